"""diffusers_video_binding: text to video with local Diffusers pipelines (MP4, GIF or WebP out)."""

from __future__ import annotations

import asyncio
import base64
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

from .encode import MIME_TYPES, encode
from .engine import VideoPipeline, load_pipeline, run_job
from .params import read_job

INDEX_FILE = "model_index.json"


class DiffusersVideoBinding(LocalModelBinding[ModelFolder, VideoPipeline]):
    binding_type_name: ClassVar[str] = "diffusers_video_binding"
    needs_compute: ClassVar[bool] = True
    required_packages: ClassVar[dict[str, str]] = {"torch": "torch", "diffusers": "diffusers",
                                                   "transformers": "transformers", "av": "av"}
    install_hint: ClassVar[str] = "install the 'video' extra"
    cache_thread_prefix: ClassVar[str] = "ttv"

    def __init__(self, config: dict[str, Any], resource_manager: Any) -> None:
        super().__init__(config, resource_manager)
        self.model_dir: Path = models_subfolder(config.get("models_folder"), "ttv")

    def load_files(self, files: ModelFolder) -> VideoPipeline:
        return load_pipeline(files, str(self.config.get("device") or "auto"), str(self.config.get("torch_dtype") or "auto"))

    def find_files(self, model_name: str | None) -> ModelFolder:
        return find_model_folder(self.model_dir, model_name or self.default_model, INDEX_FILE, "video model")

    async def list_available_models(self) -> list[dict[str, Any]]:
        def scan() -> list[dict[str, Any]]:
            out = []
            for p in list_model_folders(self.model_dir, INDEX_FILE):
                index = p.read_json(INDEX_FILE)
                out.append({"name": p.name, "format": "diffusers", "family": index.get("_class_name"), "size": p.size(),
                            "details": {"pipeline": index.get("_class_name"), "diffusers_version": index.get("_diffusers_version")}})
            return out

        return await asyncio.to_thread(scan)

    async def get_model_info(self, model_name: str | None = None) -> dict[str, Any]:
        folder = await asyncio.to_thread(self.find_files, model_name)
        index = await asyncio.to_thread(folder.read_json, INDEX_FILE)
        loaded = self.cache.get(folder)
        return {
            "model_name": folder.name, "model_type": "ttv", "context_size": None, "max_output_tokens": None,
            "supports_vision": False, "supports_audio": False,
            "details": {"format": "diffusers", "pipeline": index.get("_class_name"), "loaded": loaded is not None,
                        "device": loaded.model.device if loaded else self.config.get("device")},
        }

    async def generate(self, task: GenerationTask) -> BindingResult:
        job = read_job(task.prompt, task.params, self.config)
        folder = await asyncio.to_thread(self.find_files, task.model_name)
        async with self.cache.use(folder) as loaded:
            frames = await loaded.call(run_job, loaded.model, job, task.cancel)
            data, described = await loaded.call(encode, frames, job.fps, job.video_format)
            device = loaded.model.device
        return [{"type": "video", "data": base64.b64encode(data).decode("ascii"), "mime_type": MIME_TYPES[job.video_format],
                 "metadata": {"model": folder.name, "prompt_used": job.prompt, "negative_prompt": job.negative_prompt,
                              "num_inference_steps": job.steps, "guidance_scale": job.guidance_scale, "seed": job.seed,
                              "format": job.video_format, "device": device, **described}}]


__all__ = ["DiffusersVideoBinding"]
