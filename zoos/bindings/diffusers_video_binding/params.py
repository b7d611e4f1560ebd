"""Read and check the request parameters of one video generation (every problem is a clear 400)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lollms_server.core.bindings.param_checks import choice_of, float_in, int_in, optional_text, seed_of
from lollms_server.core.errors import BadRequestError

FORMATS: tuple[str, ...] = ("mp4", "gif", "webp")


@dataclass(frozen=True)
class VideoJob:
    prompt: str
    negative_prompt: str | None
    num_frames: int
    fps: int
    width: int | None
    height: int | None
    steps: int
    guidance_scale: float
    seed: int
    video_format: str


def _side(params: dict[str, Any], config: dict[str, Any], name: str, max_side: int) -> int | None:
    value = params.get(name, config.get(f"default_{name}"))
    if value is None:
        return None
    side = int_in(value, name, 8, max_side)
    if side % 8:
        raise BadRequestError(f"parameter '{name}' must be a multiple of 8 (got {side})")
    return side


def read_job(prompt: str, params: dict[str, Any], config: dict[str, Any]) -> VideoJob:
    if not prompt.strip():
        raise BadRequestError("text to video needs a prompt: send a text input_data item with role user_prompt")
    max_side = int(config.get("max_side") or 1024)
    frames = params.get("num_frames", params.get("frames", config.get("num_frames") or 16))
    return VideoJob(
        prompt=prompt,
        negative_prompt=optional_text(params.get("negative_prompt", config.get("negative_prompt")), "negative_prompt"),
        num_frames=int_in(frames, "num_frames", 1, int(config.get("max_frames") or 256)),
        fps=int_in(params.get("fps", config.get("fps") or 8), "fps", 1, 120),
        width=_side(params, config, "width", max_side),
        height=_side(params, config, "height", max_side),
        steps=int_in(params.get("num_inference_steps", params.get("steps", config.get("num_inference_steps") or 25)),
                     "num_inference_steps", 1, 200),
        guidance_scale=float_in(params.get("guidance_scale", config.get("guidance_scale", 9.0)), "guidance_scale", 0.0, 50.0),
        seed=seed_of(params.get("seed")),
        video_format=choice_of(params.get("video_format", config.get("video_format") or "mp4"), "video_format", FORMATS),
    )
