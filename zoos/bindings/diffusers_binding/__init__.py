"""diffusers_binding: text to image, image to image and inpainting with local Diffusers pipelines (PNG out)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

from lollms_server.core.bindings.base import (
    IMAGE_MIME_TYPES,
    BindingResult,
    GenerationTask,
)
from lollms_server.core.bindings.local_models import LocalModelBinding
from lollms_server.core.errors import BadRequestError, NotFoundError, UnavailableError

from .engine import Pipeline, decode_image, load_pipeline, run_job, to_png_b64
from .models import INDEX_FILE, PipelineFolder, diffusers_folder, find_pipeline, list_pipelines
from .params import read_job

IMAGE_ROLES = ("input_image", "image")
MASK_ROLES = ("mask_image", "mask")


class DiffusersBinding(LocalModelBinding[PipelineFolder, Pipeline]):
    binding_type_name: ClassVar[str] = "diffusers_binding"
    accepted_mime_types: ClassVar[dict[str, tuple[str, ...]]] = {"image": IMAGE_MIME_TYPES}
    input_roles: ClassVar[frozenset[str]] = frozenset(
        {"user_prompt", "system_context", "assistant_reply", *IMAGE_ROLES, *MASK_ROLES})
    needs_compute: ClassVar[bool] = True
    required_packages: ClassVar[dict[str, str]] = {"torch": "torch", "diffusers": "diffusers", "transformers": "transformers"}
    install_hint: ClassVar[str] = "install the 'diffusers' extra"
    cache_thread_prefix: ClassVar[str] = "diffusers"

    def __init__(self, config: dict[str, Any], resource_manager: Any) -> None:
        super().__init__(config, resource_manager)
        self.model_dir: Path = diffusers_folder(config.get("models_folder"))

    def load_files(self, files: PipelineFolder) -> Pipeline:
        return load_pipeline(files, str(self.config.get("device") or "auto"), str(self.config.get("torch_dtype") or "auto"))

    def free_model(self, model: Pipeline) -> None:
        model.release()

    def find_files(self, model_name: str | None) -> PipelineFolder:
        return find_pipeline(self.model_dir, model_name or self.default_model)

    async def model_problem(self) -> str | None:
        try:
            await asyncio.to_thread(self.find_files, None)
        except (UnavailableError, NotFoundError) as exc:
            return (f"{exc.message}. Fix: save a Diffusers pipeline (pipeline.save_pretrained) as a folder in "
                    f"{self.model_dir}, or set default_model to one that is there, then restart")
        return None

    async def list_available_models(self) -> list[dict[str, Any]]:
        def scan() -> list[dict[str, Any]]:
            out = []
            for p in list_pipelines(self.model_dir):
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
            "model_name": folder.name, "model_type": "tti", "context_size": None, "max_output_tokens": None,
            "supports_vision": False, "supports_audio": False,
            "details": {"format": "diffusers", "pipeline": index.get("_class_name"),
                        "components": sorted(k for k, v in index.items() if not k.startswith("_") and v and v[0]),
                        "loaded": loaded is not None, "device": loaded.model.device if loaded else self.config.get("device")},
        }

    # ---- generation ----------------------------------------------------------------------------
    def _image_inputs(self, task: GenerationTask) -> tuple[tuple[int, str] | None, tuple[int, str] | None]:
        images = [(i, x.data) for i, x in enumerate(task.inputs) if x.type == "image" and x.role in IMAGE_ROLES]
        masks = [(i, x.data) for i, x in enumerate(task.inputs) if x.type == "image" and x.role in MASK_ROLES]
        if len(images) > 1 or len(masks) > 1:
            raise BadRequestError("send at most one image with role input_image and one with role mask_image")
        if masks and not images:
            raise BadRequestError("a mask_image needs an input_image to paint into")
        if task.generation_type == "i2i" and not images:
            raise BadRequestError("image to image needs an image input with role input_image")
        return (images[0] if images else None), (masks[0] if masks else None)

    async def generate(self, task: GenerationTask) -> BindingResult:
        job = read_job(task.prompt, task.params, self.config, self.parameter_default)
        image_in, mask_in = self._image_inputs(task)
        mode = "inpaint" if mask_in else ("i2i" if image_in else "tti")
        if mode == "tti" and not job.prompt.strip():
            raise BadRequestError("text to image needs a prompt: send a text input_data item with role user_prompt")
        folder = await asyncio.to_thread(self.find_files, task.model_name)
        async with self.cache.use(folder) as loaded:
            image = await loaded.call(decode_image, image_in[1], image_in[0], "RGB") if image_in else None
            mask = await loaded.call(decode_image, mask_in[1], mask_in[0], "L") if mask_in else None
            pictures = await loaded.call(run_job, loaded, mode, job, image, mask, task.cancel)
            encoded = [await loaded.call(to_png_b64, p) for p in pictures]
            device = loaded.model.device
        meta = {"model": folder.name, "mode": mode, "prompt_used": job.prompt, "negative_prompt": job.negative_prompt,
                "num_inference_steps": job.steps, "guidance_scale": job.guidance_scale, "scheduler": job.scheduler,
                "device": device, **({"strength": job.strength} if mode != "tti" else {})}
        return [{"type": "image", "data": data, "mime_type": "image/png",
                 "metadata": {**meta, "width": pic.width, "height": pic.height, "seed": job.seed, "image_index": n}}
                for n, (data, pic) in enumerate(zip(encoded, pictures))]


__all__ = ["DiffusersBinding"]
