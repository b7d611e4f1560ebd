"""Where Diffusers pipelines are: one save_pretrained folder each in <models_folder>/diffusers_models/."""

from __future__ import annotations

from pathlib import Path

from lollms_server.core.bindings.model_files import (
    ModelFolder,
    find_model_folder,
    list_model_folders,
    models_subfolder,
)

INDEX_FILE = "model_index.json"
PipelineFolder = ModelFolder


def diffusers_folder(models_folder: str | None) -> Path:
    return models_subfolder(models_folder, "diffusers_models")


def list_pipelines(folder: Path) -> list[PipelineFolder]:
    return list_model_folders(folder, INDEX_FILE)


def find_pipeline(folder: Path, name: str | None) -> PipelineFolder:
    """The pipeline folder ``name`` (or the first one when None); 400 on escaping names, 404 when unknown."""
    return find_model_folder(folder, name, INDEX_FILE, "Diffusers model")
