"""Read and check the request parameters of one image generation (every problem is a clear 400)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Callable

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


def _int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise BadRequestError(f"parameter '{name}' must be an integer from {low} to {high}")
    if not low <= int(value) <= high:
        raise BadRequestError(f"parameter '{name}' must be from {low} to {high} (got {value})")
    return int(value)


def _float(value: Any, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequestError(f"parameter '{name}' must be a number from {low} to {high}")
    if not low <= float(value) <= high:
        raise BadRequestError(f"parameter '{name}' must be from {low} to {high} (got {value})")
    return float(value)


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
    seed_value = params.get("seed")
    seed = secrets.randbelow(2**31) if seed_value is None or seed_value == -1 else _int(seed_value, "seed", 0, 2**32 - 1)
    scheduler = params.get("scheduler", params.get("sampler", default("scheduler")))
    if scheduler != "default" and scheduler not in SCHEDULERS:
        raise BadRequestError(f"parameter 'scheduler' must be one of default, {', '.join(SCHEDULERS)} (got {scheduler!r})")
    strength = _float(params.get("strength", default("strength")), "strength", 0.01, 1.0)
    max_images = int(config["max_images_per_request"])
    num_images = _int(params.get("num_images", params.get("n", default("num_images"))), "num_images", 1, max_images)
    negative = params.get("negative_prompt", default("negative_prompt"))
    if negative is not None and not isinstance(negative, str):
        raise BadRequestError("parameter 'negative_prompt' must be a string")
    return ImageJob(prompt=prompt, negative_prompt=negative or None, width=width, height=height, steps=steps,
                    guidance_scale=guidance, seed=seed, scheduler=str(scheduler), strength=strength, num_images=num_images)
