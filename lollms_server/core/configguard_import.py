"""ConfigGuard imported without its console logging library (bench/bench_startup.py).

ConfigGuard logs through ``ascii_colors`` (its module ``configguard.log`` is ``import ascii_colors as logging``
plus one logger), a console library whose import (colours, progress bars, terminal widths, menus, a rich-like
layout engine) is about a twentieth of the server's CPU until ready. ConfigGuard itself only calls
``log.debug/info/warning/error`` on that logger. Before ConfigGuard's first import, ``import_configguard()``
gives it a ``configguard.log`` holding the standard library's logger ``ConfigGuard`` instead, at the level
``CONFIGMASTER_LOG_LEVEL`` names (the variable ConfigGuard reads; INFO when unset or invalid, as there). Its
messages then go through the server's own logging, secret redaction included, instead of a second console
handler. Nothing else changes: the handlers, validation and errors are ConfigGuard's own, and whoever imports
``ascii_colors`` later gets the real package.

ConfigGuard also imports ``cryptography``'s Fernet at import, for encrypted files only (a fiftieth of the
start-up): ``cryptography.fernet`` is hidden for the length of ConfigGuard's import, and the ``Fernet`` it
then lacks is a stand-in that imports the real one and returns its instance when an encrypted file is
opened. A configuration without encryption never imports ``cryptography``.

When a ConfigGuard release needs more of ``configguard.log`` than this gives, the shim is dropped and
ConfigGuard is imported as it ships (``tests/test_startup_lazy.py`` checks that start-up imports no
``ascii_colors``).
"""

from __future__ import annotations

import logging
import os
import sys
import types
from typing import Any

LOGGER_NAME = "ConfigGuard"


def _level() -> int:
    level = logging.getLevelName(os.environ.get("CONFIGMASTER_LOG_LEVEL", "INFO").upper())
    return level if isinstance(level, int) else logging.INFO


def set_log_level(level: str) -> None:
    """ConfigGuard's ``set_log_level()``: the level of its logger (an unknown name is logged and ignored)."""
    numeric = logging.getLevelName(level.upper())
    log = logging.getLogger(LOGGER_NAME)
    if isinstance(numeric, int):
        log.setLevel(numeric)
    else:
        log.error("Invalid log level specified: %s", level)


def _log_module() -> types.ModuleType:
    module = types.ModuleType("configguard.log", "ConfigGuard's logger: the standard library's (lollms_server.core.configguard_import).")
    log = logging.getLogger(LOGGER_NAME)
    log.setLevel(_level())
    module.log = log  # type: ignore[attr-defined]
    module.set_log_level = set_log_level  # type: ignore[attr-defined]
    return module


class LazyFernet:
    """ConfigGuard's ``Fernet`` until the real one is needed: ``LazyFernet(key)`` is ``Fernet(key)``."""

    def __new__(cls, key: bytes | str) -> Any:
        from cryptography.fernet import Fernet

        return Fernet(key)


def import_configguard() -> None:
    """Import ConfigGuard (once, before anything else of this server imports it)."""
    if "configguard" in sys.modules:
        return
    hide_fernet = "cryptography.fernet" not in sys.modules
    if hide_fernet:
        sys.modules["cryptography.fernet"] = None  # type: ignore[assignment]  # its `from ... import` fails
    sys.modules["configguard.log"] = module = _log_module()
    try:
        import configguard
    except ImportError as exc:  # this release needs more of configguard.log: ConfigGuard as it ships
        from lollms_server import shortcuts

        shortcuts.turned_off("core/configguard_import.py (ConfigGuard without ascii_colors)", "configguard", f"its import failed: {exc}")
        for name in [n for n in sys.modules if n == "configguard" or n.startswith("configguard.")]:
            del sys.modules[name]
        if hide_fernet:
            del sys.modules["cryptography.fernet"]
        import configguard  # noqa: F401
        return
    finally:
        if hide_fernet and "cryptography.fernet" in sys.modules and sys.modules["cryptography.fernet"] is None:
            del sys.modules["cryptography.fernet"]
    configguard.log = module  # type: ignore[attr-defined]  # as the package's own import would set it
    config = sys.modules.get("configguard.config")
    if hide_fernet and config is not None and getattr(config, "Fernet", False) is None:
        config.Fernet = LazyFernet  # type: ignore[attr-defined]
