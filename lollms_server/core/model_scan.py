"""/list_models: a plain scan of the models folder's subfolders (symlinks leaving the folder are skipped)."""

from __future__ import annotations

from pathlib import Path

from lollms_server.core.paths import stays_inside

KNOWN_KINDS: tuple[str, ...] = ("ttt", "tti", "ttv", "ttm", "tts", "stt", "audio2audio", "i2i", "gguf", "diffusers_models")


def scan_models_folder(models_dir: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {k: [] for k in KNOWN_KINDS}
    if not models_dir.is_dir():
        return found
    for sub in sorted(models_dir.iterdir()):
        if sub.is_dir() and not sub.name.startswith(".") and stays_inside(models_dir, sub):
            found[sub.name] = sorted(
                p.name for p in sub.iterdir() if not p.name.startswith(".") and stays_inside(models_dir, p)
            )
    return found
