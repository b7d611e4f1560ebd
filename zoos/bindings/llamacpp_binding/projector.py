"""An instance's multimodal projector (setting ``mmproj``): which of its models take images, and why not.

Images reach a model only through llama-server (engine ``server``) started with the projector, and the
projector belongs to one model, the instance's ``default_model``. Every other case is refused with words
saying what to change, never by dropping the images. The image bytes themselves (count, size, pixels,
format) are checked by ``media.py``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from lollms_server.core.bindings.base import GenerationTask
from lollms_server.core.contract import InputData
from lollms_server.core.errors import BadRequestError, LollmsError, echo
from lollms_server.core.paths import PathEscapeError, resolve_inside

from . import media
from .gguf_meta import GGUFError, read_gguf_header

log = logging.getLogger("lollms_server.bindings.llamacpp")


def projector_path(value: Any, gguf_dir: Path) -> Path | None:
    """The configured projector file: an absolute path, or a file name inside <models_folder>/gguf/."""
    if not value:
        return None
    path = Path(str(value)).expanduser()
    if path.is_absolute():
        return path
    try:
        return resolve_inside(gguf_dir, str(value))
    except PathEscapeError as exc:
        raise RuntimeError(f"mmproj '{value}' leaves the models folder ({exc}); give an absolute path") from None


def image_limits(config: dict[str, Any]) -> media.ImageLimits:
    """Instance settings ``max_images`` and ``max_image_mb``."""
    return media.ImageLimits(int(config.get("max_images") or 4), int(config.get("max_image_mb") or 16) * 1024 * 1024)


@dataclass(frozen=True)
class Projector:
    """The projector of one instance and the engine it runs on."""

    instance_name: str
    default_model: str | None
    path: Path | None  # the mmproj file, None when not configured
    server_engine: bool  # images need llama-server; the in-process engine sends none
    paired_model: Path | None  # the file of default_model, which llama-server runs with the projector
    limits: media.ImageLimits

    def problem(self, model_name: str | None, model_file: Callable[[str], Path]) -> str | None:
        """None when ``model_name`` takes images, else why not and what to change. ``model_file``: the file of
        a model name (raises LollmsError for an unknown one)."""
        if self.path is None:
            return (f"set the mmproj setting of instance '{self.instance_name}' to the model's multimodal projector "
                    "(mmproj GGUF) to send images (engine server)")
        if not self.server_engine:
            return (f"instance '{self.instance_name}' runs the in-process engine, which sends no images to the "
                    "projector; use engine: server (llama-server) with mmproj")
        if model_name and model_name != self.default_model:
            try:
                other = model_file(model_name) != self.paired_model
            except LollmsError:
                return None  # an unknown model: the 404 comes from check_model
            if other:
                return (f"the mmproj of instance '{self.instance_name}' belongs to its default_model "
                        f"'{self.default_model}'; images are accepted with that model only")
        return None

    def images(self, task: GenerationTask, model_file: Callable[[str], Path]) -> list[list[InputData]]:
        """The images of each chat message (in the order of the task's messages); 400 when this model takes none."""
        per_message = [list(m.images) for m in task.messages]
        if any(per_message):
            problem = self.problem(task.model_name, model_file)
            if problem is not None:
                raise BadRequestError(f"model '{echo(task.model_name or '')}' takes no images here: {problem}")
        return per_message

    async def check_file(self) -> None:
        """Start-up: the configured projector must be a readable mmproj GGUF, for a default model."""
        if self.path is None:
            return
        if not self.default_model:
            raise RuntimeError("mmproj is set but default_model is not: the projector belongs to default_model; set it")
        if not self.server_engine:
            log.warning("llamacpp '%s': mmproj is ignored by the in-process engine (images need engine: server)",
                        self.instance_name)
            return
        try:
            header = await asyncio.to_thread(read_gguf_header, self.path)
        except (GGUFError, OSError, EOFError) as exc:
            raise RuntimeError(f"mmproj '{self.path.name}' cannot be read as GGUF: {exc}") from None
        if header.metadata.get("general.architecture") != "clip":
            raise RuntimeError(f"mmproj '{self.path.name}' is not a multimodal projector (its GGUF architecture is "
                               f"'{header.metadata.get('general.architecture')}', not 'clip')")
