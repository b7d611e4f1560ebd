"""The methods ``@dataclass`` writes, compiled once instead of at every start (bench/bench_startup.py).

``@dataclass`` writes the source text of each method it adds to a class (``__init__``, ``__repr__``,
``__eq__``…) and compiles it with ``exec()``: about 640 small compilations for the 150-odd dataclasses that
the server and its libraries (FastAPI, pydantic, anyio…) define before it is ready, a sixth of the CPU
``serve`` spends until ready. What compiling a given text gives is fixed for a given interpreter, so
``serve`` keeps it: while the server starts, the ``exec()`` that the ``dataclasses`` module calls takes the
code compiled from that very text (the dictionary key is the whole text) from a cache file instead of
compiling it again, then runs it exactly as ``exec(text, globals, locals)`` would (same file name
``<string>``, no inherited ``__future__`` flags). The functions and classes built from it are new objects
as always; only the compilation is skipped. ``settle()`` (when start-up is done) puts the standard
``exec()`` back and, when start-up compiled a text the file did not have, writes the texts this start used.

The file: one per interpreter build (its bytecode tag, e.g. ``cpython-311``) in the user cache folder
(``core/file_cache.py``: ``LOLLMS_CACHE_DIR``; ``LOLLMS_CACHE_DIR=off`` turns it off), mode 0600, replaced
atomically. It is read only when it belongs to this user and nobody else may write to it or its folder:
the trust Python itself gives to the bytecode in ``__pycache__``. A file that cannot be read or does not
parse is no cache (every text is compiled, as without it).
"""

from __future__ import annotations

import __future__
import builtins
import dataclasses
import marshal
import os
import sys
import tempfile
from pathlib import Path
from types import CodeType
from typing import Any

from lollms_server.core.file_cache import cache_dir

MAX_ENTRIES = 4096  # texts kept (a start uses about 640): a bound on the file whatever the libraries do

_codes: dict[str, CodeType] = {}  # what the file held
_used: dict[str, CodeType] = {}  # what this start asked for (written back when something was new)
_compiled = 0
_installed = False


def cache_file() -> Path | None:
    try:
        folder = cache_dir()
    except (RuntimeError, KeyError, OSError):  # no home folder to find: no cache
        return None
    tag = sys.implementation.cache_tag
    return None if folder is None or tag is None else folder / f"dataclass_code.{tag}.marshal"


def _trusted(path: Path, st: os.stat_result) -> bool:
    """Ours and writable by us alone (file and folder), as a cache of code must be."""
    if os.name != "posix":
        return True  # no mode bits: the folder's access list (the user's profile) decides, as for __pycache__
    try:
        folder = path.parent.stat()
    except OSError:
        return False
    uid = os.getuid()
    return st.st_uid == uid and folder.st_uid == uid and not (st.st_mode | folder.st_mode) & 0o022


def _load(path: Path) -> dict[str, CodeType]:
    try:
        with open(path, "rb") as fh:
            if not _trusted(path, os.fstat(fh.fileno())):
                return {}
            data = marshal.loads(fh.read())  # (marshal.load() reads a file object piece by piece: 20x slower)
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, CodeType)}


def _exec(source: Any, globals: dict[str, Any] | None = None, locals: Any = None, **kwargs: Any) -> None:
    """``exec()`` for the dataclasses module: the code of a text seen before comes from the cache."""
    global _compiled
    if not isinstance(source, str) or kwargs:  # (a closure= or whatever a later Python passes: as it is)
        builtins.exec(source, globals, locals, **kwargs)
        return
    code = _used.get(source) or _codes.get(source)
    if code is None:
        code = compile(source, "<string>", "exec", dont_inherit=True)  # what exec(source) compiles
        _compiled += 1
    _used[source] = code
    builtins.exec(code, globals, locals)


def install() -> None:
    """Until ``settle()``: the dataclasses module's exec() uses the cache (nothing when caching is off)."""
    global _installed, _codes, _compiled
    path = cache_file()
    if _installed or path is None or "exec" in vars(dataclasses):
        return
    if any(isinstance(value, __future__._Feature) for value in vars(dataclasses).values()):  # type: ignore[attr-defined]
        from lollms_server import shortcuts  # (its exec() would compile with that feature: the cache's code would not)

        shortcuts.turned_off("core/dataclass_code.py (dataclass methods compiled once)", "python",
                             "the dataclasses module imports from __future__")
        return
    _codes, _compiled = _load(path), 0
    _used.clear()
    dataclasses.exec = _exec  # type: ignore[attr-defined]  # a module global shadows the builtin for that module only
    _installed = True


def settle() -> None:
    """The standard exec() again; the file rewritten when this start compiled something it did not hold."""
    global _installed, _codes
    if not _installed:
        return
    if vars(dataclasses).get("exec") is _exec:
        del dataclasses.exec  # type: ignore[attr-defined]
    _installed = False
    path = cache_file()
    if _compiled and path is not None:
        _save(path, dict(list(_used.items())[:MAX_ENTRIES]))
    _codes = {}
    _used.clear()


def _save(path: Path, codes: dict[str, CodeType]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if os.name == "posix" and not _trusted(path, path.parent.stat()):
            return  # a folder others may write to: the file would never be read
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # mode 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                marshal.dump(codes, fh)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except (OSError, ValueError):
        pass  # no cache this time
