"""Request limits of the main configuration (``server.max_*``), read once into a typed object."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

from lollms_server.core.config_schema import MAIN_SCHEMA
from lollms_server.core.errors import BadRequestError


@dataclass(frozen=True)
class RequestLimits:
    """What one request may carry; each field is the ``server`` setting of the same name."""

    max_body_bytes: int
    max_header_bytes: int
    max_input_items: int
    max_binary_input_bytes: int

    @classmethod
    def from_section(cls, server: Mapping[str, Any]) -> "RequestLimits":
        schema = MAIN_SCHEMA["server"]["schema"]
        return cls(**{f.name: int(server.get(f.name) or schema[f.name]["default"]) for f in fields(cls)})

    @classmethod
    def defaults(cls) -> "RequestLimits":
        return cls.from_section({})


def size_text(n: int) -> str:
    """Bytes for people: 33554432 -> '32 MB'."""
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


def check_item_count(count: int, limits: RequestLimits, what: str = "input_data") -> None:
    if count > limits.max_input_items:
        raise BadRequestError(
            f"{what} has {count} items; at most {limits.max_input_items} are accepted (server.max_input_items)"
        )


def check_base64_size(index: int, kind: str, data: str, limits: RequestLimits) -> None:
    """400 before decoding when a base64 input would decode to more than ``max_binary_input_bytes``."""
    decoded = len(data) * 3 // 4
    if decoded > limits.max_binary_input_bytes:
        raise BadRequestError(
            f"input_data[{index}]: the {kind} is about {size_text(decoded)} once decoded; at most "
            f"{size_text(limits.max_binary_input_bytes)} per input (server.max_binary_input_bytes)"
        )


def bounded_max_tokens(requested: Any, configured: Any, window: int | None, model: str | None) -> Any:
    """The max_tokens to use: a request asking for more than the context window gets a 400; a default is clamped."""
    if window is None or window <= 0:
        return configured
    if isinstance(requested, int) and not isinstance(requested, bool) and requested > window:
        raise BadRequestError(
            f"max_tokens={requested} does not fit: model '{model}' holds {window} tokens in all (prompt + answer); "
            f"ask for at most {window}"
        )
    if isinstance(configured, int) and not isinstance(configured, bool) and configured > window:
        return window
    return configured
