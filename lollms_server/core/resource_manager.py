"""The import path the specification names for the ResourceManager (``core/resource_manager.py``).

The implementation lives in ``core.resources``; this module only re-exports it.
"""

from lollms_server.core.resources import ResourceManager, ResourceState

__all__ = ["ResourceManager", "ResourceState"]
