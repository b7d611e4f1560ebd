"""Diffusers pipelines: loading, and the blocking steps run on the loaded pipeline's worker thread."""

from __future__ import annotations

import base64
import binascii
import contextlib
import inspect
import io
from dataclasses import dataclass, field
from typing import Any

from lollms_server.core.bindings.base import CancelToken
from lollms_server.core.bindings.torch_device import pick_device, pick_dtype
from lollms_server.core.bindings.worker import LoadedModel
from lollms_server.core.errors import BadRequestError, NotSupportedError

from .models import PipelineFolder
from .params import SCHEDULERS, ImageJob

MODES: dict[str, str] = {"tti": "AutoPipelineForText2Image", "i2i": "AutoPipelineForImage2Image",
                         "inpaint": "AutoPipelineForInpainting"}


@dataclass
class Pipeline:
    """A loaded pipeline, its device, and the per-mode pipelines built from its components."""

    base: Any  # a diffusers DiffusionPipeline
    device: str
    variants: dict[str, Any] = field(default_factory=dict)

    def release(self) -> None:
        self.variants.clear()


LoadedPipeline = LoadedModel[PipelineFolder, Pipeline]


def load_pipeline(folder: PipelineFolder, device_setting: str, dtype_setting: str) -> Pipeline:
    """Load a save_pretrained folder from disk only (never the hub) and move it to its device."""
    from diffusers import AutoPipelineForText2Image, DiffusionPipeline
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()
    with contextlib.suppress(ImportError):
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()

    device = pick_device(device_setting)
    kwargs = {"dtype": pick_dtype(dtype_setting, device), "local_files_only": True}
    try:
        pipe = AutoPipelineForText2Image.from_pretrained(str(folder.folder), **kwargs)
    except ValueError:  # a pipeline class AutoPipeline does not map: load it as it is
        pipe = DiffusionPipeline.from_pretrained(str(folder.folder), **kwargs)
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return Pipeline(pipe, device)


def decode_image(data: str, index: int, mode: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(base64.b64decode(data)))
        img.load()
    except (UnidentifiedImageError, OSError, ValueError, binascii.Error):
        raise BadRequestError(f"input_data[{index}]: the image could not be decoded; send PNG, JPEG or WebP") from None
    return img.convert(mode)


def _variant(loaded: LoadedPipeline, mode: str, scheduler: str) -> Any:
    """The pipeline for this mode and scheduler; components are shared with the loaded base pipeline."""
    import diffusers

    auto_cls = getattr(diffusers, MODES[mode])
    overrides: dict[str, Any] = {}
    if scheduler != "default":
        sched_cls = getattr(diffusers, SCHEDULERS[scheduler])
        overrides["scheduler"] = sched_cls.from_config(loaded.model.base.scheduler.config)
    if not overrides and mode in loaded.model.variants:
        return loaded.model.variants[mode]
    try:
        pipe = auto_cls.from_pipe(loaded.model.base, **overrides)
    except (ValueError, KeyError, TypeError) as exc:
        what = {"tti": "text to image", "i2i": "image to image", "inpaint": "inpainting"}[mode]
        raise NotSupportedError(f"model '{loaded.files.name}' ({type(loaded.model.base).__name__}) cannot do {what}: {exc}") from None
    pipe.set_progress_bar_config(disable=True)
    if not overrides:
        loaded.model.variants[mode] = pipe
    return pipe


def _fit(img: Any, size: tuple[int, int]) -> Any:
    from PIL import Image

    return img if img.size == size else img.resize(size, Image.Resampling.LANCZOS)


def run_job(loaded: LoadedPipeline, mode: str, job: ImageJob, image: Any, mask: Any, cancel: CancelToken) -> list[Any]:
    """Blocking inference; the step callback interrupts the pipeline when the request is cancelled."""
    import torch

    pipe = _variant(loaded, mode, job.scheduler)
    kwargs: dict[str, Any] = {
        "prompt": job.prompt, "negative_prompt": job.negative_prompt, "num_inference_steps": job.steps,
        "guidance_scale": job.guidance_scale, "num_images_per_prompt": job.num_images,
        "generator": torch.Generator(device="cpu").manual_seed(job.seed),
    }
    if mode == "tti":
        kwargs.update({k: v for k, v in (("width", job.width), ("height", job.height)) if v is not None})
    else:
        size = (job.width or image.width // 8 * 8 or 8, job.height or image.height // 8 * 8 or 8)
        kwargs["image"] = _fit(image, size)
        kwargs["strength"] = job.strength
        if int(job.steps * job.strength) < 1:
            raise BadRequestError(f"num_inference_steps x strength must be at least 1 (got {job.steps} x {job.strength})")
        if mode == "inpaint":
            kwargs["mask_image"] = _fit(mask, size)
            kwargs["width"], kwargs["height"] = size
    accepted = inspect.signature(pipe.__call__).parameters
    if "callback_on_step_end" in accepted:
        def on_step(p: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
            if cancel.cancelled:
                p._interrupt = True
            return callback_kwargs

        kwargs["callback_on_step_end"] = on_step
    kwargs = {k: v for k, v in kwargs.items() if k in accepted or k == "prompt"}
    with torch.inference_mode():
        result = pipe(**kwargs)
    return list(result.images)


def to_png_b64(img: Any) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")
