"""musicgen_binding: text to music with MusicGen-architecture models in Hugging Face Transformers (WAV out)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

from lollms_server.core.bindings.base import BindingResult, GenerationTask
from lollms_server.core.bindings.local_models import LocalModelBinding
from lollms_server.core.bindings.model_files import (
    ModelFolder,
    find_model_folder,
    list_model_folders,
    models_subfolder,
)
from lollms_server.core.bindings.param_checks import float_in, int_in, seed_of
from lollms_server.core.bindings.wav import duration_of, wav_b64
from lollms_server.core.errors import BadRequestError

from .engine import MusicJob, MusicModel, generate_pcm, load_model

CONFIG_FILE = "config.json"


class MusicgenBinding(LocalModelBinding[ModelFolder, MusicModel]):
    binding_type_name: ClassVar[str] = "musicgen_binding"
    needs_compute: ClassVar[bool] = True
    required_packages: ClassVar[dict[str, str]] = {"torch": "torch", "transformers": "transformers"}
    install_hint: ClassVar[str] = "install the 'transformers' extra"
    cache_thread_prefix: ClassVar[str] = "musicgen"

    def __init__(self, config: dict[str, Any], resource_manager: Any) -> None:
        super().__init__(config, resource_manager)
        self.model_dir: Path = models_subfolder(config.get("models_folder"), "ttm")

    def load_files(self, files: ModelFolder) -> MusicModel:
        return load_model(files, str(self.config.get("device") or "auto"), str(self.config.get("torch_dtype") or "auto"))

    def find_files(self, model_name: str | None) -> ModelFolder:
        return find_model_folder(self.model_dir, model_name or self.default_model, CONFIG_FILE, "music model")

    async def list_available_models(self) -> list[dict[str, Any]]:
        def scan() -> list[dict[str, Any]]:
            out = []
            for p in list_model_folders(self.model_dir, CONFIG_FILE):
                cfg = p.read_json(CONFIG_FILE)
                out.append({"name": p.name, "format": "transformers", "family": cfg.get("model_type"), "size": p.size(),
                            "details": {"architectures": cfg.get("architectures")}})
            return out

        return await asyncio.to_thread(scan)

    async def get_model_info(self, model_name: str | None = None) -> dict[str, Any]:
        folder = await asyncio.to_thread(self.find_files, model_name)
        cfg = await asyncio.to_thread(folder.read_json, CONFIG_FILE)
        loaded = self.cache.get(folder)
        audio = cfg.get("audio_encoder") or {}
        return {
            "model_name": folder.name, "model_type": "ttm", "context_size": None, "max_output_tokens": None,
            "supports_vision": False, "supports_audio": False,
            "details": {"format": "transformers", "architectures": cfg.get("architectures"),
                        "sample_rate": audio.get("sampling_rate"), "channels": audio.get("audio_channels", 1),
                        "loaded": loaded is not None, "device": loaded.model.device if loaded else self.config.get("device")},
        }

    def _job(self, task: GenerationTask) -> MusicJob:
        if not task.prompt.strip():
            raise BadRequestError("text to music needs a description: send a text input_data item with role user_prompt")
        p, c = task.params, self.config
        max_duration = float(c.get("max_duration") or 30.0)
        return MusicJob(
            prompt=task.prompt,
            duration=float_in(p.get("duration", c.get("duration") or 8.0), "duration", 0.1, max_duration),
            guidance_scale=float_in(p.get("guidance_scale", c.get("guidance_scale", 3.0)), "guidance_scale", 0.0, 20.0),
            temperature=float_in(p.get("temperature", c.get("temperature", 1.0)), "temperature", 0.01, 5.0),
            top_k=int_in(p.get("top_k", c.get("top_k", 250)), "top_k", 0, 10000),
            seed=seed_of(p.get("seed")),
        )

    async def generate(self, task: GenerationTask) -> BindingResult:
        job = self._job(task)
        folder = await asyncio.to_thread(self.find_files, task.model_name)
        async with self.cache.use(folder) as loaded:
            pcm, rate = await loaded.call(generate_pcm, loaded.model, job, task.cancel)
            device = loaded.model.device
        channels = int(pcm.shape[1])
        raw = pcm.tobytes()
        return [{"type": "audio", "data": wav_b64(raw, rate, channels), "mime_type": "audio/wav",
                 "metadata": {"model": folder.name, "prompt_used": job.prompt, "sample_rate": rate, "channels": channels,
                              "duration": duration_of(raw, rate, channels=channels), "requested_duration": job.duration,
                              "guidance_scale": job.guidance_scale, "temperature": job.temperature, "top_k": job.top_k,
                              "seed": job.seed, "device": device}}]


__all__ = ["MusicgenBinding"]
