"""Audio conversion with PyAV (FFmpeg's encoders, bundled in its wheel): any input -> mp3, opus, aac, flac,
wav or raw pcm. Blocking: call it from a worker thread."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from lollms_server.core.errors import BackendError, BadRequestError


@dataclass(frozen=True)
class AudioFormat:
    container: str
    codec: str
    mime_type: str
    rate: int | None = None  # fixed output rate, else the input's


# OpenAI's speech formats; pcm is raw 16-bit little-endian mono at 24 kHz, as OpenAI documents it
FORMATS: dict[str, AudioFormat] = {
    "mp3": AudioFormat("mp3", "libmp3lame", "audio/mpeg"),
    "opus": AudioFormat("ogg", "libopus", "audio/ogg", 48000),
    "aac": AudioFormat("adts", "aac", "audio/aac"),
    "flac": AudioFormat("flac", "flac", "audio/flac"),
    "wav": AudioFormat("wav", "pcm_s16le", "audio/wav"),
    "pcm": AudioFormat("s16le", "pcm_s16le", "audio/pcm", 24000),
}

# mime types a binding may return -> the format name they already are
FORMAT_OF_MIME: dict[str, str] = {
    "audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav", "audio/mpeg": "mp3", "audio/mp3": "mp3",
    "audio/flac": "flac", "audio/opus": "opus", "audio/aac": "aac", "audio/pcm": "pcm",
}


def convert(data: bytes, fmt: str) -> tuple[bytes, str]:
    """Decode ``data`` (any container PyAV reads) and encode it as ``fmt``; (bytes, mime type)."""
    import av  # imported here: only speech conversion needs it

    target = FORMATS.get(fmt)
    if target is None:
        raise BadRequestError(f"unknown audio format '{fmt}'; use one of {', '.join(FORMATS)}")
    out_buf = io.BytesIO()
    try:
        with av.open(io.BytesIO(data), mode="r") as source:
            if not source.streams.audio:
                raise BackendError("the binding's audio holds no audio stream")
            in_stream = source.streams.audio[0]
            rate = target.rate or in_stream.codec_context.sample_rate or 24000
            with av.open(out_buf, mode="w", format=target.container) as sink:
                out_stream: Any = sink.add_stream(target.codec, rate=rate)
                out_stream.layout = "mono"
                resampler = av.AudioResampler(format=out_stream.format.name, layout="mono", rate=rate)
                for frame in source.decode(in_stream):
                    for converted in resampler.resample(frame):
                        sink.mux(out_stream.encode(converted))
                for converted in resampler.resample(None):
                    sink.mux(out_stream.encode(converted))
                sink.mux(out_stream.encode(None))
    except av.error.FFmpegError as exc:
        raise BackendError(f"the binding's audio could not be converted to {fmt}: {exc}") from None
    return out_buf.getvalue(), target.mime_type
