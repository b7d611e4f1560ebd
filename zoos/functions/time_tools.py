"""Date and time."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


async def now(timezone: str = "UTC") -> str:
    """Current date and time in ISO 8601.

    Args:
        timezone: IANA time zone name, e.g. "Europe/Paris".
    """
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone '{timezone}'") from exc
    return datetime.now(zone).isoformat(timespec="seconds")
