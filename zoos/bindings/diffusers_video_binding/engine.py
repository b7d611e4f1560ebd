"""Diffusers video pipelines: loading, and the blocking generation run on the pipeline's worker thread."""

from __future__ import annotations

import contextlib
import inspect
from typing import Any

from lollms_server.core.bindings.base import CancelToken
from lollms_server.core.bindings.model_files import ModelFolder
from lollms_server.core.bindings.torch_device import pick_device, pick_dtype
from lollms_server.core.errors import BackendError

from .encode import to_uint8_frames
from .params import VideoJob


class _Cancelled(Exception):
    """Raised from a step callback to leave the pipeline when the client went away."""


class VideoPipeline:
    def __init__(self, pipe: Any, device: str) -> None:
        self.pipe = pipe
        self.device = device


def load_pipeline(folder: ModelFolder, device_setting: str, dtype_setting: str) -> VideoPipeline:
    """Load a save_pretrained folder from disk only (never the hub) and move it to its device."""
    from diffusers import DiffusionPipeline
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()
    with contextlib.suppress(ImportError):
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    device = pick_device(device_setting)
    pipe = DiffusionPipeline.from_pretrained(str(folder.folder), dtype=pick_dtype(dtype_setting, device),
                                             local_files_only=True)
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return VideoPipeline(pipe, device)


def _cancel_hooks(accepted: Any, cancel: CancelToken) -> dict[str, Any]:
    """Step callbacks that stop the pipeline once the request is cancelled (new and old diffusers styles)."""
    if "callback_on_step_end" in accepted:
        def on_step_end(p: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
            if cancel.cancelled:
                raise _Cancelled
            return callback_kwargs

        return {"callback_on_step_end": on_step_end}
    if "callback" in accepted:
        def on_step(step: int, timestep: Any, latents: Any) -> None:
            if cancel.cancelled:
                raise _Cancelled

        return {"callback": on_step, "callback_steps": 1}
    return {}


def run_job(loaded: VideoPipeline, job: VideoJob, cancel: CancelToken) -> Any:
    """Blocking inference; returns (frames, height, width, 3) uint8."""
    import torch

    pipe = loaded.pipe
    accepted = inspect.signature(pipe.__call__).parameters
    kwargs: dict[str, Any] = {
        "prompt": job.prompt, "negative_prompt": job.negative_prompt, "num_frames": job.num_frames,
        "num_inference_steps": job.steps, "guidance_scale": job.guidance_scale, "output_type": "np",
        "generator": torch.Generator(device="cpu").manual_seed(job.seed),
        **{k: v for k, v in (("width", job.width), ("height", job.height)) if v is not None},
        **_cancel_hooks(accepted, cancel),
    }
    kwargs = {k: v for k, v in kwargs.items() if k in accepted or k == "prompt"}
    try:
        with torch.inference_mode():
            result = pipe(**kwargs)
    except _Cancelled:
        raise BackendError("video generation was cancelled (the client went away)") from None
    frames = getattr(result, "frames", None)
    if frames is None:
        raise RuntimeError(f"{type(pipe).__name__} returned no frames: is it a video pipeline?")
    return to_uint8_frames(frames)
