"""Frames (uint8 RGB arrays) to a video file: MP4 through PyAV (FFmpeg), GIF and WebP through Pillow."""

from __future__ import annotations

import io
from typing import Any

MIME_TYPES: dict[str, str] = {"mp4": "video/mp4", "gif": "image/gif", "webp": "image/webp"}


def to_uint8_frames(frames: Any) -> Any:
    """A (frames, height, width, 3) uint8 array from a pipeline's numpy output (floats 0..1) or PIL list."""
    import numpy as np

    if isinstance(frames, list) and frames and hasattr(frames[0], "convert"):
        return np.stack([np.asarray(f.convert("RGB")) for f in frames])
    arr = np.asarray(frames)
    if arr.ndim == 5:  # (batch, frames, h, w, c): one video per request
        arr = arr[0]
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3, 4):
        raise ValueError(f"unexpected video frames shape {arr.shape}")
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return arr[..., :3]


def _mp4(frames: Any, fps: int) -> tuple[bytes, str]:
    import av

    # yuv420p needs even sides: drop a last odd row/column
    height, width = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2
    if not height or not width:
        raise ValueError("frames are too small to encode as MP4 (need at least 2x2 pixels); ask for gif or webp")
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream: Any = container.add_stream(codec, rate=fps)  # a VideoStream
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for frame in frames:
            picture = av.VideoFrame.from_ndarray(frame[:height, :width].copy(), format="rgb24")
            container.mux(stream.encode(picture))
        container.mux(stream.encode(None))
    return buf.getvalue(), codec


def _animated(frames: Any, fps: int, fmt: str) -> bytes:
    from PIL import Image

    pictures = [Image.fromarray(f) for f in frames]
    buf = io.BytesIO()
    extra = {"lossless": True} if fmt == "webp" else {}
    pictures[0].save(buf, format=fmt.upper(), save_all=True, append_images=pictures[1:],
                     duration=max(1, round(1000 / fps)), loop=0, **extra)
    return buf.getvalue()


def encode(frames: Any, fps: int, fmt: str) -> tuple[bytes, dict[str, Any]]:
    """The encoded file and what describes it (codec, size, frame count)."""
    if fmt == "mp4":
        data, codec = _mp4(frames, fps)
    else:
        data, codec = _animated(frames, fps, fmt), fmt
    return data, {"codec": codec, "width": int(frames.shape[2]), "height": int(frames.shape[1]),
                  "num_frames": int(frames.shape[0]), "fps": fps, "duration": round(frames.shape[0] / fps, 3)}
