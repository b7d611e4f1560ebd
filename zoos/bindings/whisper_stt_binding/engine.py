"""Loaded Whisper models (each with one worker thread) and the blocking decode + transcribe step."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, TypeVar

from lollms_server.core.bindings.base import CancelToken
from lollms_server.core.errors import BadRequestError

from .models import WhisperFiles

T = TypeVar("T")
SAMPLE_RATE = 16000


@dataclass
class LoadedModel:
    files: WhisperFiles
    model: Any  # faster_whisper.WhisperModel
    executor: ThreadPoolExecutor
    users: int = 0
    evicted: bool = False

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def close_if_unused(self) -> None:
        if self.evicted and self.users == 0:
            self.executor.shutdown(wait=False)


@dataclass
class ModelCache:
    """Keeps up to ``limit`` models loaded (least recently used goes first); loads each only once."""

    limit: int
    load: Callable[[WhisperFiles], Any]
    models: "OrderedDict[str, LoadedModel]" = field(default_factory=OrderedDict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    @contextlib.asynccontextmanager
    async def use(self, files: WhisperFiles) -> AsyncIterator[LoadedModel]:
        key = str(files.folder)
        async with self._locks.setdefault(key, asyncio.Lock()):
            loaded = self.models.get(key)
            if loaded is None:
                executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"whisper-{files.name}")
                try:
                    model = await asyncio.get_running_loop().run_in_executor(executor, self.load, files)
                except BaseException:
                    executor.shutdown(wait=False)
                    raise
                loaded = LoadedModel(files, model, executor)
                self.models[key] = loaded
            self.models.move_to_end(key)
            loaded.users += 1
            while len(self.models) > self.limit:
                _, old = self.models.popitem(last=False)
                old.evicted = True
                old.close_if_unused()
        try:
            yield loaded
        finally:
            loaded.users -= 1
            loaded.close_if_unused()

    def unload(self, name: str | None = None) -> bool:
        keys = [k for k, v in self.models.items() if name is None or v.files.name == name]
        for key in keys:
            old = self.models.pop(key)
            old.evicted = True
            old.close_if_unused()
        return bool(keys)


def decode(audio_bytes: bytes, index: int) -> Any:
    """Decode any container/codec PyAV reads into 16 kHz mono float32; 400 when it cannot."""
    from faster_whisper import decode_audio  # type: ignore[import-not-found]

    try:
        samples = decode_audio(io.BytesIO(audio_bytes), sampling_rate=SAMPLE_RATE)
    except Exception as exc:  # PyAV raises many error types for bad input
        raise BadRequestError(
            f"input_data[{index}]: the audio could not be decoded ({type(exc).__name__}); send wav, mp3, ogg, flac or webm"
        ) from None
    if samples.size == 0:
        raise BadRequestError(f"input_data[{index}]: the audio contains no samples")
    return samples


def transcribe(model: Any, samples: Any, options: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
    """Run one transcription, stopping between segments when the request is cancelled."""
    segments_iter, info = model.transcribe(samples, **options)
    segments: list[dict[str, Any]] = []
    for seg in segments_iter:
        segments.append({"start": round(float(seg.start), 3), "end": round(float(seg.end), 3), "text": seg.text.strip()})
        if cancel.cancelled:
            break
    return {
        "text": " ".join(s["text"] for s in segments if s["text"]).strip(),
        "segments": segments,
        "language": info.language,
        "language_probability": round(float(info.language_probability), 4),
        "duration": round(float(info.duration), 3),
    }
