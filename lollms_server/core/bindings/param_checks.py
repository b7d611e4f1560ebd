"""Checks of request parameters shared by bindings: every problem is a 400 naming the parameter."""

from __future__ import annotations

from typing import Any

from lollms_server.core.errors import BadRequestError


def int_in(value: Any, name: str, low: int, high: int) -> int:
    """``value`` as an int within [low, high] (a whole float such as 4.0 is accepted)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise BadRequestError(f"parameter '{name}' must be an integer from {low} to {high}")
    if not low <= int(value) <= high:
        raise BadRequestError(f"parameter '{name}' must be from {low} to {high} (got {value})")
    return int(value)


def float_in(value: Any, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequestError(f"parameter '{name}' must be a number from {low} to {high}")
    if not low <= float(value) <= high:
        raise BadRequestError(f"parameter '{name}' must be from {low} to {high} (got {value})")
    return float(value)


def choice_of(value: Any, name: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise BadRequestError(f"parameter '{name}' must be one of {', '.join(options)} (got {value!r})")
    return str(value)


def optional_text(value: Any, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise BadRequestError(f"parameter '{name}' must be a string")
    return value or None


def seed_of(value: Any) -> int:
    """A request seed; None or -1 = a random one."""
    import secrets

    return secrets.randbelow(2**31) if value is None or value == -1 else int_in(value, "seed", 0, 2**32 - 1)
