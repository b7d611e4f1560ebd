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


def merge_parameters(*layers: dict[str, Any] | None) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for layer in layers:
        if layer:
            merged.update({k: v for k, v in layer.items() if v is not None})
    try:
        KnownParameters.model_validate(merged)
    except ValidationError as exc:
        e = exc.errors()[0]
        where = ".".join(map(str, e["loc"]))
        raise BadRequestError(f"parameters.{where}: {e['msg']} (got {e.get('input')!r})") from exc
    if isinstance(merged.get("stop"), str):
        merged["stop"] = [merged["stop"]]
    return merged
