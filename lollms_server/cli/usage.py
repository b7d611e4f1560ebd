"""`lollms-server usage`: read the usage ledger (works while the server runs, or without it; the Redis one in redis mode)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from lollms_server.core.usage import GROUP_FIELDS, UsageQuery, parse_group_by, parse_when, to_csv


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("usage", parents=[common], help="Show the usage ledger (tokens per day, key, model…).")
    p.add_argument("--since", default="30d", help="From: 7d, 12h, 2026-01-31… (default 30d).")
    p.add_argument("--until", help="To (exclusive).")
    p.add_argument("--key", help="API key id or name.")
    p.add_argument("--model")
    p.add_argument("--personality")
    p.add_argument("--binding")
    p.add_argument("--surface")
    p.add_argument("--group-by", default="day", help=f"Comma separated: {', '.join(GROUP_FIELDS)}; 'none' = rows.")
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--csv", action="store_true", help="CSV instead of a table.")
    p.set_defaults(func=cmd_usage)


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no usage recorded for this selection)"
    cols = list(rows[0])
    cells = [[("" if r[c] is None else str(r[c])) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.rjust(w) if v.replace(".", "", 1).isdigit() else v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def cmd_usage(args: argparse.Namespace) -> int:
    from lollms_server.cli.main import _config_dir
    from lollms_server.core.config import load_server_config
    from lollms_server.core.guarded_config import ConfigFileError
    from lollms_server.core.paths import resolve_config_path
    from lollms_server.core.redis_conn import shared_state_enabled
    from lollms_server.core.usage_sqlite import connect, query_rows, query_totals

    try:
        config = load_server_config(_config_dir(args.config_dir))
        q = UsageQuery(since=parse_when(args.since), until=parse_when(args.until), key=args.key, model=args.model,
                       personality=args.personality, binding=args.binding, surface=args.surface, limit=max(1, args.limit))
        groups = [] if args.group_by.strip().lower() == "none" else parse_group_by(args.group_by)
    except (ConfigFileError, ValueError) as exc:
        print(f"lollms-server usage: {exc}", file=sys.stderr)
        return 2
    if shared_state_enabled(config.section("resource_manager")):
        return _print(_from_redis(config.section("resource_manager"), q, groups), args.csv)
    db = resolve_config_path(str(config.section("usage").get("database") or "usage.sqlite"), config.paths.config_dir)
    if db is None or not Path(db).is_file():
        print(f"lollms-server usage: no usage database yet ({db}); it is created when the server starts", file=sys.stderr)
        return 1
    conn = connect(Path(db), readonly=True)
    try:
        rows = query_totals(conn, q, groups) if groups else query_rows(conn, q)
    finally:
        conn.close()
    return _print(rows, args.csv)


def _print(rows: list[dict[str, Any]] | None, as_csv: bool) -> int:
    if rows is None:
        return 1
    print(to_csv(rows) if as_csv else _table(rows), end="" if as_csv else "\n")
    return 0


def _from_redis(rm: dict[str, Any], q: UsageQuery, groups: list[str]) -> list[dict[str, Any]] | None:
    """resource_manager.backend redis: the ledger every replica writes (None, after a message, when unreachable)."""
    from lollms_server.core.errors import SharedStateUnavailableError
    from lollms_server.core.redis_conn import key_prefix, redis_url
    from lollms_server.core.usage_redis import RedisUsageLedger

    async def read() -> list[dict[str, Any]]:
        ledger = RedisUsageLedger(redis_url(rm), prefix=f"{key_prefix(rm)}:usage")
        try:
            return await (ledger.totals(q, groups) if groups else ledger.rows(q))
        finally:
            ledger._close_target()

    try:
        return asyncio.run(read())
    except (SharedStateUnavailableError, ValueError) as exc:
        print(f"lollms-server usage: {exc}", file=sys.stderr)
        return None
