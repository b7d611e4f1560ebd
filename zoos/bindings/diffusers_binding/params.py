"""Read and check the request parameters of one image generation (every problem is a clear 400)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from lollms_server.core.bindings.param_checks import float_in as _float
from lollms_server.core.bindings.param_checks import int_in as _int
from lollms_server.core.bindings.param_checks import optional_text, seed_of
from lollms_server.core.errors import BadRequestError

SCHEDULERS: dict[str, str] = {
    "ddim": "DDIMScheduler",
    "ddpm": "DDPMScheduler",
    "pndm": "PNDMScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler_a": "EulerAncestralDiscreteScheduler",
    "heun": "HeunDiscreteScheduler",
    "dpm_multistep": "DPMSolverMultistepScheduler",
    "dpm_single": "DPMSolverSinglestepScheduler",
    "unipc": "UniPCMultistepScheduler",
    "lcm": "LCMScheduler",
}


@dataclass(frozen=True)
class ImageJob:
    prompt: str
    negative_prompt: str | None
    width: int | None
    height: int | None
    steps: int
    guidance_scale: float
    seed: int
    scheduler: str  # "default" or a key of SCHEDULERS
    strength: float
    num_images: int


def _side(value: Any, name: str, max_side: int) -> int:
    side = _int(value, name, 8, max_side)
    if side % 8:
        raise BadRequestError(f"parameter '{name}' must be a multiple of 8 (got {side})")
    return side


def image_size(params: dict[str, Any], default: Callable[[str], Any], max_side: int) -> tuple[int | None, int | None]:
    """(width, height) from image_size/size "WxH" or width/height; None = model or input image size."""
    size = params.get("image_size") or params.get("size")
    if size is not None:
        parts = str(size).lower().split("x") if isinstance(size, str) else []
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise BadRequestError(f"parameter 'image_size' must look like '512x512' (got {size!r})")
        return _side(int(parts[0]), "width", max_side), _side(int(parts[1]), "height", max_side)
    width = params.get("width", default("width"))
    height = params.get("height", default("height"))
    return (None if width is None else _side(width, "width", max_side),
            None if height is None else _side(height, "height", max_side))


def read_job(prompt: str, params: dict[str, Any], config: dict[str, Any], default: Callable[[str], Any]) -> ImageJob:
    """The job a request asks for; ``default(name)`` gives a parameter's declared default (card / instance)."""
    width, height = image_size(params, default, int(config["max_image_side"]))
    steps = _int(params.get("num_inference_steps", params.get("steps", default("num_inference_steps"))),
                 "num_inference_steps", 1, 200)
    guidance = _float(params.get("guidance_scale", params.get("cfg_scale", default("guidance_scale"))),
                      "guidance_scale", 0.0, 50.0)
    seed = seed_of(params.get("seed"))
    scheduler = params.get("scheduler", params.get("sampler", default("scheduler")))
    if scheduler != "default" and scheduler not in SCHEDULERS:
        raise BadRequestError(f"parameter 'scheduler' must be one of default, {', '.join(SCHEDULERS)} (got {scheduler!r})")
    strength = _float(params.get("strength", default("strength")), "strength", 0.01, 1.0)
    max_images = int(config["max_images_per_request"])
    num_images = _int(params.get("num_images", params.get("n", default("num_images"))), "num_images", 1, max_images)
    negative = optional_text(params.get("negative_prompt", default("negative_prompt")), "negative_prompt")
    return ImageJob(prompt=prompt, negative_prompt=negative or None, width=width, height=height, steps=steps,
                    guidance_scale=guidance, seed=seed, scheduler=str(scheduler), strength=strength, num_images=num_images)
