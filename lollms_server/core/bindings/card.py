"""binding_card.yaml: metadata and the ConfigGuard instance schema of a binding type."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from lollms_server.core.bindings.parameters import GenerationParameter, parse_declarations
from lollms_server.core.file_cache import FileCache
from lollms_server.core.secrets import secret_keys


class CardError(Exception):
    pass


class BindingCard(BaseModel):
    model_config = ConfigDict(extra="allow")

    type_name: str
    display_name: str | None = None
    version: str | None = None
    author: str | None = None
    description: str | None = None
    requirements: list[str] = Field(default_factory=list)
    supports_streaming: bool = False
    documentation_url: str | None = None
    supported_input_modalities: list[str] = Field(default_factory=list)
    supported_output_modalities: list[str] = Field(default_factory=list)
    generation_types: list[str] = Field(default_factory=list)
    supports_tools: bool = Field(default=False, description="Models of this type can be offered tools (function calling).")
    instance_schema: dict[str, Any] = Field(default_factory=dict)
    generation_parameters: dict[str, Any] = Field(
        default_factory=dict, description="Generation parameters the binding understands (see core.bindings.parameters)."
    )
    _parameters: list[GenerationParameter] = PrivateAttr(default_factory=list)

    def model_post_init(self, __context: Any) -> None:
        self._parameters = parse_declarations(self.generation_parameters, self.generation_types)

    @property
    def parameters(self) -> list[GenerationParameter]:
        """The declared generation parameters, checked."""
        return self._parameters

    def instance_parameters(self, values: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The parameter list with this instance's defaults, or None when they equal the card's."""
        own = [p.public(values) for p in self._parameters]
        return own if own != [p.public() for p in self._parameters] else None

    def full_instance_schema(self) -> dict[str, Any]:
        """instance_schema plus the fields every instance has (type, binding_instance_name, __version__)."""
        schema = dict(self.instance_schema)
        schema.setdefault("__version__", "0.1.0")
        schema.setdefault(
            "type", {"type": "str", "default": self.type_name, "help": "Binding type name (from the card)."}
        )
        schema.setdefault(
            "binding_instance_name",
            {"type": "str", "default": "", "help": "Instance name; equals the file stem and the bindings_map key."},
        )
        return schema

    def secret_fields(self) -> set[str]:
        return secret_keys(self.instance_schema)

    def public_info(self) -> dict[str, Any]:
        data = self.model_dump(exclude={"instance_schema", "generation_parameters"})
        data["parameters"] = [p.public() for p in self._parameters]
        return data


_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's: every card is read at start-up
_PARSED = FileCache("binding_cards")  # the YAML of unchanged cards, parsed once (core/file_cache.py)


def _parse(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)  # noqa: S506 - a safe loader


def load_card(path: Path) -> BindingCard:
    try:
        raw = _PARSED.get(path, lambda: _parse(path))
    except (OSError, yaml.YAMLError) as exc:
        raise CardError(f"{path}: cannot be read: {exc}") from exc
    if not isinstance(raw, dict):
        raise CardError(f"{path}: must be a YAML mapping")
    try:
        card = BindingCard.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "generation_parameters"
        raise CardError(f"{path}: field '{where}': {first['msg']}") from exc
    except ValueError as exc:
        raise CardError(f"{path}: {exc}") from exc
    return card
