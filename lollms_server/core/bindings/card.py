"""binding_card.yaml: metadata and the ConfigGuard instance schema of a binding type."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
    instance_schema: dict[str, Any] = Field(default_factory=dict)

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
        data = self.model_dump(exclude={"instance_schema"})
        return data


def load_card(path: Path) -> BindingCard:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CardError(f"{path}: cannot be read: {exc}") from exc
    if not isinstance(raw, dict):
        raise CardError(f"{path}: must be a YAML mapping")
    try:
        card = BindingCard.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise CardError(f"{path}: field '{'.'.join(map(str, first['loc']))}': {first['msg']}") from exc
    return card
