"""/list_models: a plain scan of the models folder's subfolders."""

from __future__ import annotations

from pathlib import Path

KNOWN_KINDS: tuple[str, ...] = ("ttt", "tti", "ttv", "ttm", "tts", "stt", "audio2audio", "i2i", "gguf", "diffusers_models")


def scan_models_folder(models_dir: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {k: [] for k in KNOWN_KINDS}
    if not models_dir.is_dir():
        return found
    for sub in sorted(models_dir.iterdir()):
        if sub.is_dir() and not sub.name.startswith("."):
            found[sub.name] = sorted(p.name for p in sub.iterdir() if not p.name.startswith("."))
    return found
