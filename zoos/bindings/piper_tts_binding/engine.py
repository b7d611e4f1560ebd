"""Loaded Piper voices, each with one dedicated worker thread that does all of its (blocking) work."""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Iterator, TypeVar

from .voices import VoiceFiles

T = TypeVar("T")


@dataclass
class LoadedVoice:
    files: VoiceFiles
    voice: Any  # piper.PiperVoice
    executor: ThreadPoolExecutor
    users: int = 0
    evicted: bool = False

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def close_if_unused(self) -> None:
        if self.evicted and self.users == 0:
            self.executor.shutdown(wait=False)

    @property
    def sample_rate(self) -> int:
        return int(self.voice.config.sample_rate)


def _load_voice(files: VoiceFiles) -> Any:
    from piper import PiperVoice  # type: ignore[import-not-found]

    return PiperVoice.load(str(files.model), config_path=str(files.config))


@dataclass
class VoiceCache:
    """Keeps up to ``limit`` voices loaded (least recently used goes first); loads each only once."""

    limit: int
    voices: "OrderedDict[str, LoadedVoice]" = field(default_factory=OrderedDict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    @contextlib.asynccontextmanager
    async def use(self, files: VoiceFiles) -> AsyncIterator[LoadedVoice]:
        key = str(files.model)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            loaded = self.voices.get(key)
            if loaded is None:
                executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"piper-{files.name}")
                try:
                    voice = await asyncio.get_running_loop().run_in_executor(executor, _load_voice, files)
                except BaseException:
                    executor.shutdown(wait=False)
                    raise
                loaded = LoadedVoice(files, voice, executor)
                self.voices[key] = loaded
            self.voices.move_to_end(key)
            loaded.users += 1
            self._evict()
        try:
            yield loaded
        finally:
            loaded.users -= 1
            loaded.close_if_unused()

    def _evict(self) -> None:
        while len(self.voices) > self.limit:
            _, old = self.voices.popitem(last=False)
            old.evicted = True
            old.close_if_unused()

    def unload(self, name: str | None = None) -> bool:
        keys = [k for k, v in self.voices.items() if name is None or v.files.name == name]
        for key in keys:
            old = self.voices.pop(key)
            old.evicted = True
            old.close_if_unused()
        return bool(keys)


def next_or_none(it: Iterator[T]) -> T | None:
    """next() that returns None at the end (StopIteration cannot cross a Future)."""
    return next(it, None)
