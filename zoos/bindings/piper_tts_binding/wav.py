"""Small helpers to pack 16-bit mono PCM into base64 WAV."""

from __future__ import annotations

import base64
import io
import wave


def wav_bytes(pcm: bytes, sample_rate: int, channels: int = 1, sample_width: int = 2) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(sample_width)
        w.setframerate(sample_rate)
        w.writeframes(pcm)
    return buf.getvalue()


def wav_b64(pcm: bytes, sample_rate: int, channels: int = 1, sample_width: int = 2) -> str:
    return base64.b64encode(wav_bytes(pcm, sample_rate, channels, sample_width)).decode("ascii")


def silence(seconds: float, sample_rate: int, sample_width: int = 2) -> bytes:
    return b"\x00" * (round(seconds * sample_rate) * sample_width)


def duration_of(pcm: bytes, sample_rate: int, sample_width: int = 2) -> float:
    return round(len(pcm) / (sample_width * sample_rate), 3) if sample_rate else 0.0
