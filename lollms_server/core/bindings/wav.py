"""16-bit PCM in and out of WAV files (base64 for the API), shared by the audio bindings."""

from __future__ import annotations

import base64
import io
import wave
from dataclasses import dataclass


@dataclass(frozen=True)
class Pcm:
    frames: bytes
    sample_rate: int
    channels: int = 1
    sample_width: int = 2


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


def read_wav(data: bytes) -> Pcm:
    """The PCM frames of a WAV file (raises wave.Error or EOFError when it is not one)."""
    with wave.open(io.BytesIO(data), "rb") as w:
        return Pcm(w.readframes(w.getnframes()), w.getframerate(), w.getnchannels(), w.getsampwidth())


def silence(seconds: float, sample_rate: int, sample_width: int = 2) -> bytes:
    return b"\x00" * (round(seconds * sample_rate) * sample_width)


def duration_of(pcm: bytes, sample_rate: int, sample_width: int = 2, channels: int = 1) -> float:
    return round(len(pcm) / (sample_width * sample_rate * channels), 3) if sample_rate else 0.0
