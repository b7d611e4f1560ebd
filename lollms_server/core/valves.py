"""Valves: a plugin's settings as a pydantic model (Open WebUI's idea), with secret fields masked.

A field is secret when its type is ``pydantic.SecretStr`` or it carries ``json_schema_extra={"secret": True}``.
Secret values never leave the server: answers show ``********``; sending ``********`` back keeps the stored value.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from lollms_server.core.secrets import MASK, REDACTOR


class FilterValves(BaseModel):
    """Base of a filter's Valves: every filter has a priority and an error policy."""

    model_config = ConfigDict(extra="forbid")

    priority: int = Field(0, description="Lower runs first (inlet and stream); outlet runs in the same order.")
    on_error: Literal["error", "skip"] = Field(
        "error", description="When this filter raises: 'error' fails the request with a clear message; 'skip' ignores it."
    )


class ValvesError(ValueError):
    pass


def secret_fields(model: type[BaseModel]) -> set[str]:
    found = set()
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if info.annotation is SecretStr or info.annotation == (SecretStr | None) or extra.get("secret"):
            found.add(name)
    return found


def plain(values: BaseModel) -> dict[str, Any]:
    """Values as stored (secrets in clear: only for the encrypted settings file and the plugin itself)."""
    out = values.model_dump()
    for k, v in out.items():
        if isinstance(v, SecretStr):
            out[k] = v.get_secret_value()
    return out


def masked(values: BaseModel) -> dict[str, Any]:
    data = plain(values)
    for name in secret_fields(type(values)):
        if data.get(name) not in (None, ""):
            data[name] = MASK
    return data


def build(model: type[BaseModel], stored: dict[str, Any] | None, *, where: str) -> BaseModel:
    """The valves from stored values (unknown or invalid stored values fail naming the plugin)."""
    try:
        values = model.model_validate(stored or {})
    except ValidationError as exc:
        raise ValvesError(f"{where}: {_problems(exc)}") from exc
    remember_secrets(values)
    return values


def apply_update(model: type[BaseModel], current: BaseModel | None, update: dict[str, Any], *, where: str) -> BaseModel:
    """``current`` with ``update`` applied; a masked secret in ``update`` keeps the current value."""
    unknown = [k for k in update if k not in model.model_fields]
    if unknown:
        raise ValvesError(f"{where}: unknown valve(s) {', '.join(map(str, unknown))} (known: {', '.join(model.model_fields)})")
    merged = plain(current) if current is not None else {}
    for k, v in update.items():
        if v == MASK and k in secret_fields(model):
            continue
        merged[k] = v
    return build(model, merged, where=where)


def remember_secrets(values: BaseModel) -> None:
    data = plain(values)
    REDACTOR.add(*[data[n] for n in secret_fields(type(values)) if data.get(n)])


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'valves'}: {e['msg']}" for e in exc.errors())


def schema(model: type[BaseModel] | None) -> dict[str, Any] | None:
    """JSON schema of a valves model (drives the web UI and wizard forms); secret fields say so."""
    if model is None:
        return None
    sch = model.model_json_schema()
    for name in secret_fields(model):
        sch.get("properties", {}).get(name, {})["secret"] = True
    return sch
