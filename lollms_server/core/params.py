"""Generation parameters: merge (defaults < personality < request) and check the well-known ones."""

from __future__ import annotations

from typing import Any, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lollms_server.core.errors import BadRequestError


class KnownParameters(BaseModel):
    """Types and ranges of parameters many bindings share; other keys pass through untouched."""

    model_config = ConfigDict(extra="allow")

    max_tokens: Optional[int] = Field(default=None, ge=1)
    temperature: Optional[float] = Field(default=None, ge=0.0, le=5.0)
    top_p: Optional[float] = Field(default=None, gt=0.0, le=1.0)
    top_k: Optional[int] = Field(default=None, ge=0)
    repeat_penalty: Optional[float] = Field(default=None, gt=0.0)
    seed: Optional[int] = None
    stop: Optional[Union[str, list[str]]] = None
    n: Optional[int] = Field(default=None, ge=1, le=16)
    width: Optional[int] = Field(default=None, ge=1)  # image bindings read width/height as pixels
    height: Optional[int] = Field(default=None, ge=1)


_SCALARS = (int, float, str, bool, type(None))
_VALID: dict[tuple[tuple[str, type, Any], ...], None] = {}  # small sets of plain values already found valid
_VALID_MAX = 1024


def merge_parameters(*layers: dict[str, Any] | None) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for layer in layers:
        if layer:
            merged.update({k: v for k, v in layer.items() if v is not None})
    _check_known(merged)
    if isinstance(merged.get("stop"), str):
        merged["stop"] = [merged["stop"]]
    return merged


def _check_known(merged: dict[str, Any]) -> None:
    """400 when a well-known parameter has a wrong type or range. A set of plain values (the same names, types and
    values: the defaults and a personality's, mostly) that passed once is not validated again."""
    key: tuple[tuple[str, type, Any], ...] | None = None
    if len(merged) <= 16 and all(type(v) in _SCALARS and (type(v) is not str or len(v) <= 64) for v in merged.values()):
        key = tuple((k, type(v), v) for k, v in merged.items())
        if key in _VALID:
            return
    try:
        KnownParameters.model_validate(merged)
    except ValidationError as exc:
        e = exc.errors()[0]
        where = ".".join(map(str, e["loc"]))
        raise BadRequestError(f"parameters.{where}: {e['msg']} (got {e.get('input')!r})") from exc
    if key is not None and len(_VALID) < _VALID_MAX:
        _VALID[key] = None
