"""The usage ledger: one record per generation, behind a small interface.

``UsageLedger`` is what the pipeline and the API see. ``record`` never blocks (the SQLite
implementation hands records to one background writer thread that batches them); queries run off
the event loop. ``NullLedger`` is used when the ledger is turned off. A Redis or server-database
implementation only has to provide the same methods.
"""

from __future__ import annotations

import csv
import operator
import io
import time
from datetime import datetime, timezone
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, Protocol

GROUP_FIELDS: dict[str, str] = {
    "day": "date(ts, 'unixepoch')",
    "hour": "strftime('%Y-%m-%dT%H:00', ts, 'unixepoch')",
    "key": "key_name",
    "model": "model",
    "personality": "personality",
    "binding": "binding",
    "surface": "surface",
    "status": "status",
    "generation_type": "generation_type",
}
Status = Literal["ok", "error", "cancelled"]


@dataclass
class UsageRecord:
    request_id: str
    ts: float
    surface: str
    generation_type: str
    key_id: str | None = None
    key_name: str | None = None
    binding: str | None = None
    model: str | None = None
    personality: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    ttft_ms: float | None = None
    duration_ms: float = 0.0
    status: Status = "ok"
    cancelled: bool = False
    error: str | None = None
    prompt_text: str | None = field(default=None, repr=False)
    answer_text: str | None = field(default=None, repr=False)

    @property
    def total_tokens(self) -> int:
        return int(self.prompt_tokens or 0) + int(self.completion_tokens or 0)

    def row(self) -> tuple[Any, ...]:
        return _ROW(self)  # type: ignore[no-any-return]


RECORD_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(UsageRecord))
_ROW = operator.attrgetter(*RECORD_COLUMNS)  # the values of a record, in the columns' order


@dataclass
class UsageQuery:
    """Filters of a usage query; every one optional. ``key`` matches a key id or name."""

    since: float | None = None
    until: float | None = None
    key: str | None = None
    model: str | None = None
    personality: str | None = None
    binding: str | None = None
    surface: str | None = None
    status: str | None = None
    limit: int = 100

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if self.since is not None:
            clauses.append("ts >= ?")
            args.append(self.since)
        if self.until is not None:
            clauses.append("ts < ?")
            args.append(self.until)
        if self.key:
            clauses.append("(key_id = ? OR key_name = ?)")
            args += [self.key, self.key]
        for name in ("model", "personality", "binding", "surface", "status"):
            value = getattr(self, name)
            if value:
                clauses.append(f"{name} = ?")
                args.append(value)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


class UsageLedger(Protocol):
    store_text: bool
    recording: bool

    def record(self, rec: UsageRecord) -> None:
        """Queue one record; must never block the caller."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def rows(self, q: UsageQuery) -> list[dict[str, Any]]:
        """Records matching ``q``, newest first (at most ``q.limit``)."""

    async def totals(self, q: UsageQuery, group_by: list[str]) -> list[dict[str, Any]]:
        """Aggregates per group (requests, tokens, errors, cancelled, timings)."""

    async def tokens_since(self, since: float) -> dict[str, int]:
        """Total tokens per key id since ``since`` (seeds the per-key daily limits)."""


class NullLedger:
    """usage.enabled = false: nothing recorded, queries answer empty."""

    store_text = False
    recording = False

    def record(self, rec: UsageRecord) -> None:
        return None

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def rows(self, q: UsageQuery) -> list[dict[str, Any]]:
        return []

    async def totals(self, q: UsageQuery, group_by: list[str]) -> list[dict[str, Any]]:
        return []

    async def tokens_since(self, since: float) -> dict[str, int]:
        return {}


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    if not rows:
        return ""
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow(r)
    return out.getvalue()


def start_of_day(now: float | None = None) -> float:
    """Midnight UTC of today, as epoch seconds (per-key daily limits and 'today' reset then)."""
    t = time.time() if now is None else now
    return t - (t % 86400)


def record_dict(rec: UsageRecord) -> dict[str, Any]:
    return asdict(rec)


_RELATIVE = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_when(value: str | None, *, now: float | None = None) -> float | None:
    """Epoch seconds from '7d' / '12h' / '30m' / '2w' (that long ago), an ISO date or an ISO date-time (UTC if naive)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    unit = _RELATIVE.get(text[-1:].lower())
    if unit and text[:-1].isdigit():
        return (time.time() if now is None else now) - int(text[:-1]) * unit
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{value}' is not a time: use e.g. 7d, 12h, 2026-01-31 or 2026-01-31T12:00:00") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def parse_group_by(value: str | None) -> list[str]:
    groups = [g.strip() for g in (value or "").split(",") if g.strip()]
    unknown = [g for g in groups if g not in GROUP_FIELDS]
    if unknown:
        raise ValueError(f"cannot group by {', '.join(unknown)}; use any of {', '.join(GROUP_FIELDS)} (comma separated)")
    if len(set(groups)) != len(groups):
        raise ValueError("group_by names a field twice")
    return groups
