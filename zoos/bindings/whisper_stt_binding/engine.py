"""The blocking decode + transcribe steps, run on the loaded model's worker thread."""

from __future__ import annotations

import io
from typing import Any

from lollms_server.core.bindings.base import CancelToken
from lollms_server.core.errors import BadRequestError

SAMPLE_RATE = 16000


def decode(audio_bytes: bytes, index: int) -> Any:
    """Decode any container/codec PyAV reads into 16 kHz mono float32; 400 when it cannot."""
    from faster_whisper import decode_audio  # type: ignore[import-not-found]

    try:
        samples = decode_audio(io.BytesIO(audio_bytes), sampling_rate=SAMPLE_RATE)
    except Exception as exc:  # noqa: BLE001 - PyAV raises many error types for bad input
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
