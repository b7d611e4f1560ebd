"""WAV helpers (shared with the other audio bindings in lollms_server.core.bindings.wav)."""

from lollms_server.core.bindings.wav import duration_of, silence, wav_b64, wav_bytes

__all__ = ["duration_of", "silence", "wav_b64", "wav_bytes"]
