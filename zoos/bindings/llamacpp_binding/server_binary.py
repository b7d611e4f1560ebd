"""Where the ``llama-server`` binary of the server engine comes from.

Looked up in this order (the first that names an executable file wins):
1. the instance setting ``llama_server_path``;
2. the environment variable ``LOLLMS_LLAMA_SERVER``;
3. the build cache of ``scripts/install_llamaserver.sh``:
   ``$LOLLMS_WHEEL_CACHE`` (else ``$XDG_CACHE_HOME/lollms_server/wheels``, else
   ``~/.cache/lollms_server/wheels``) ``/llama-server-<llama-cpp-python version>-native-off-static/llama-server``.
The cache folder is keyed by the llama-cpp-python version, so the binary runs the same llama.cpp code as
the in-process engine.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

ENV_VAR = "LOLLMS_LLAMA_SERVER"
DEFAULT_VERSION = "0.3.36"  # the pinned llama-cpp-python (binding_card.yaml requirements)
BUILD_KEY = "native-off-static"  # flags of scripts/install_llamaserver.sh


def cache_root() -> Path:
    explicit = os.environ.get("LOLLMS_WHEEL_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lollms_server" / "wheels"


def llama_cpp_version() -> str:
    try:
        dist = importlib.metadata.distribution("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        return DEFAULT_VERSION
    return _metadata_version(dist.read_text("METADATA") or "") or dist.version


def _metadata_version(metadata: str) -> str | None:
    """The ``Version:`` field of a METADATA file's header (read at start-up: parsing the whole file as an
    e-mail message, as ``Distribution.version`` does, costs milliseconds for one field)."""
    for line in metadata.splitlines():
        if not line:
            return None  # the header ends at the first empty line
        if line.startswith("Version:"):
            return line[len("Version:"):].strip() or None
    return None


def cached_binary() -> Path:
    return cache_root() / f"llama-server-{llama_cpp_version()}-{BUILD_KEY}" / "llama-server"


def _usable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_llama_server(configured: str | None) -> tuple[Path | None, str]:
    """(the binary or None, where it was looked for / why it is missing: words for logs and health)."""
    if configured:
        path = Path(configured).expanduser()
        if _usable(path):
            return path, "llama_server_path"
        return None, f"llama_server_path '{path.name}' is not an executable file"
    env = os.environ.get(ENV_VAR)
    if env:
        path = Path(env).expanduser()
        if _usable(path):
            return path, ENV_VAR
        return None, f"{ENV_VAR} does not name an executable file"
    path = cached_binary()
    if _usable(path):
        return path, "build cache"
    return None, "no llama-server build found (run scripts/install_llamaserver.sh, or set " \
                 f"{ENV_VAR} or llama_server_path)"
