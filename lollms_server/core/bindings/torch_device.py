"""Device and precision choice shared by the PyTorch bindings (torch is imported only when called)."""

from __future__ import annotations

from typing import Any

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")
DTYPES: tuple[str, ...] = ("auto", "float32", "float16", "bfloat16")


def _mps_available(torch: Any) -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def pick_device(setting: str) -> str:
    """``auto`` = cuda when torch sees a GPU, else mps on Apple silicon, else cpu; refuse an absent device."""
    import torch

    if setting == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if _mps_available(torch) else "cpu"
    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device is 'cuda' but torch sees no CUDA GPU (this torch build may be CPU-only)")
    if setting == "mps" and not _mps_available(torch):
        raise RuntimeError("device is 'mps' but torch sees no Apple Metal device")
    if setting not in DEVICES:
        raise RuntimeError(f"device must be one of {', '.join(DEVICES)} (got {setting!r})")
    return setting


def pick_dtype(setting: str, device: str) -> Any:
    """The torch dtype: ``auto`` = float16 on cuda and mps, float32 on cpu."""
    import torch

    name = setting if setting != "auto" else ("float32" if device == "cpu" else "float16")
    if name not in DTYPES:
        raise RuntimeError(f"torch_dtype must be one of {', '.join(DTYPES)} (got {setting!r})")
    return getattr(torch, name)
