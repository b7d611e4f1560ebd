"""What start-up derives from files that rarely change, kept between runs: the parsed binding cards and
the model files whose GGUF header was found sound (``bench/bench_startup.py``: a tenth of the start-up work).

One JSON file per kind in the user cache folder (``LOLLMS_CACHE_DIR``, else ``$XDG_CACHE_HOME/lollms_server``,
else ``~/.cache/lollms_server``; ``LOLLMS_CACHE_DIR=off`` turns the cache off), mode 0600, replaced
atomically. An entry holds what the file gave and the file's identity: absolute path, device, inode, size,
modification and status-change times in nanoseconds. It is used only while all of them are unchanged; any
change reads the file again. A file is only cached once its status-change time is a few seconds old (the
way git treats "racily clean" files): a file rewritten within one tick of the clock, with the same size, can
then not be taken for the cached one. A cache that cannot be read, does not parse or cannot be written is no
cache: start-up reads every file as it always does.

Never for a file that can hold a secret (instance and main configuration files are not cached); only for
values JSON keeps exactly.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from lollms_server.core.file_modes import restrict_to_owner

T = TypeVar("T")
SETTLED_S = 3.0  # a file changed more recently than this is read, not cached
MAX_ENTRIES = 128  # per kind: the oldest entries go first (the whole file is read at every start: keep it small)
_FORMAT = 1
_now: Callable[[], int] = time.time_ns  # the clock that says whether a file has settled (tests move it)


def cache_dir() -> Path | None:
    """The cache folder, or None when caching is off."""
    chosen = os.environ.get("LOLLMS_CACHE_DIR")
    if chosen:
        return None if chosen.lower() == "off" else Path(chosen).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "lollms_server"


def identity(path: Path) -> list[int] | None:
    """What must be unchanged for a cached entry of ``path`` to hold; None when it is missing."""
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _copy(value: Any) -> Any:
    """A copy through JSON: what the cache file would give back."""
    return json.loads(json.dumps(value))


class FileCache:
    """Values derived from files, by absolute path (see the module's docstring)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def _file(self) -> Path | None:
        folder = cache_dir()
        return None if folder is None else folder / f"{self.kind}.v{_FORMAT}.json"

    def _load(self) -> dict[str, Any]:
        if self._entries is None:
            self._entries = {}
            file = self._file()
            if file is not None:
                try:
                    data = json.loads(file.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    data = None
                if isinstance(data, dict):
                    self._entries = data
        return self._entries

    def get(self, path: Path, compute: Callable[[], T]) -> T:
        """The cached value for ``path`` while the file is unchanged, else ``compute()`` (cached when it can be)."""
        key = str(path.absolute())
        with self._lock:
            before = identity(path)
            entry = self._load().get(key) if before is not None else None
            if isinstance(entry, dict) and entry.get("id") == before and "value" in entry:
                return _copy(entry["value"])  # each caller gets its own (a caller may change what it got)
        value = compute()
        with self._lock:
            after = identity(path)
            if after is None or after != before or _now() - after[4] < SETTLED_S * 1e9:
                return value  # changed while read, or too recently to be told apart from a rewrite
            kept = _kept(value)
            if kept is _NOT_KEPT:
                return value
            entries = self._load()
            entries.pop(key, None)
            entries[key] = {"id": after, "value": kept}
            for gone in [k for k in entries if k != key and not os.path.exists(k)]:
                del entries[gone]  # files of removed folders are never asked for again
            _trim(entries)
            self._save()
        return value

    def _save(self) -> None:
        file = self._file()
        if file is None or self._entries is None:
            return
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".tmp", dir=file.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(self._entries, fh)
                restrict_to_owner(tmp)
                os.replace(tmp, file)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        except OSError:
            pass  # no cache this time


_NOT_KEPT = object()


def _kept(value: Any) -> Any:
    """What an entry stores for ``value``: its JSON copy, or ``_NOT_KEPT`` when JSON would not give it back exactly."""
    try:
        kept = _copy(value)
    except (TypeError, ValueError):
        return _NOT_KEPT
    return kept if kept == value else _NOT_KEPT


def _trim(entries: dict[str, Any]) -> None:
    """The oldest entries dropped beyond MAX_ENTRIES."""
    for old in list(entries)[:max(0, len(entries) - MAX_ENTRIES)]:
        del entries[old]


class TextCache(FileCache):
    """Values derived from a text alone, by the text itself: a changed text is another entry, so an entry
    never needs checking against a file (e.g. the parsed docstrings of the functions, core/functions.py)."""

    def get_for(self, text: str, compute: Callable[[], T]) -> T:
        """The cached value for ``text``, else ``compute()`` (cached when JSON keeps it exactly)."""
        with self._lock:
            entries = self._load()
            if text in entries:
                return _copy(entries[text])  # type: ignore[no-any-return]
        value = compute()
        kept = _kept(value)
        if kept is _NOT_KEPT:
            return value
        with self._lock:
            entries = self._load()
            entries.pop(text, None)
            entries[text] = kept
            _trim(entries)
            self._save()
        return value
