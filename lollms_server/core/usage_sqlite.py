"""SQLite usage ledger: a bounded queue drained by one writer thread in batches; reads off the loop."""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Union

from lollms_server.core.usage import GROUP_FIELDS, RECORD_COLUMNS, UsageQuery, UsageRecord

log = logging.getLogger("lollms_server.usage")

_COLUMN_TYPES: dict[str, str] = {
    "ts": "REAL NOT NULL", "prompt_tokens": "INTEGER", "completion_tokens": "INTEGER", "ttft_ms": "REAL",
    "duration_ms": "REAL", "cancelled": "INTEGER NOT NULL DEFAULT 0",
}
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS usage (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    + ", ".join(f"{c} {_COLUMN_TYPES.get(c, 'TEXT')}" for c in RECORD_COLUMNS)
    + ")"
)
_INDEXES = ("CREATE INDEX IF NOT EXISTS usage_ts ON usage(ts)", "CREATE INDEX IF NOT EXISTS usage_key ON usage(key_id, ts)")
_INSERT = f"INSERT INTO usage ({', '.join(RECORD_COLUMNS)}) VALUES ({', '.join('?' for _ in RECORD_COLUMNS)})"
_BATCH = 500
_LINGER = 0.2  # seconds the writer waits after the first record of a batch
_RETENTION_EVERY = 3600.0

_Item = Union[UsageRecord, threading.Event, None]
_IDLE = threading.Event()


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=10, check_same_thread=False)  # opened at start-up, used by the writer
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(_SCHEMA)
        for ddl in _INDEXES:
            conn.execute(ddl)
        conn.commit()
    conn.row_factory = sqlite3.Row
    return conn


def query_rows(conn: sqlite3.Connection, q: UsageQuery) -> list[dict[str, Any]]:
    where, args = q.where()
    cur = conn.execute(
        f"SELECT {', '.join(RECORD_COLUMNS)} FROM usage{where} ORDER BY ts DESC, id DESC LIMIT ?", [*args, q.limit]
    )
    out = []
    for r in cur.fetchall():
        d = dict(r)
        d["cancelled"] = bool(d["cancelled"])
        out.append(d)
    return out


def query_totals(conn: sqlite3.Connection, q: UsageQuery, group_by: list[str]) -> list[dict[str, Any]]:
    for g in group_by:
        if g not in GROUP_FIELDS:
            raise ValueError(f"cannot group by '{g}'; use any of {', '.join(GROUP_FIELDS)}")
    where, args = q.where()
    keys = [f"{GROUP_FIELDS[g]} AS {g}" for g in group_by]
    select = ", ".join([
        *keys, "COUNT(*) AS requests", "COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens",
        "COALESCE(SUM(completion_tokens), 0) AS completion_tokens",
        "COALESCE(SUM(prompt_tokens), 0) + COALESCE(SUM(completion_tokens), 0) AS total_tokens",
        "SUM(status = 'error') AS errors", "SUM(cancelled) AS cancelled",
        "ROUND(AVG(duration_ms), 3) AS avg_duration_ms", "ROUND(MAX(duration_ms), 3) AS max_duration_ms",
        "ROUND(AVG(ttft_ms), 3) AS avg_ttft_ms",
    ])
    group = f" GROUP BY {', '.join(group_by)} ORDER BY {', '.join(group_by)}" if group_by else ""
    cur = conn.execute(f"SELECT {select} FROM usage{where}{group} LIMIT ?", [*args, max(q.limit, 1)])
    return [dict(r) for r in cur.fetchall()]


class SqliteUsageLedger:
    """The default ledger. ``record`` puts the row on a bounded queue; a full queue drops it (logged)."""

    recording = True

    def __init__(self, path: Path, *, store_text: bool = False, retention_days: int = 0, max_queue: int = 10000) -> None:
        self.path = path
        self.store_text = store_text
        self.retention_days = retention_days
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.written = 0

    # ---- life cycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        conn = await asyncio.to_thread(connect, self.path)  # fail at start-up, not at the first request
        self._thread = threading.Thread(target=self._writer, args=(conn,), name="usage-ledger", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        if self._thread is None:
            return
        await asyncio.to_thread(self._queue.put, None)
        await asyncio.to_thread(self._thread.join, 10)
        self._thread = None

    # ---- writing ---------------------------------------------------------------------------------
    def record(self, rec: UsageRecord) -> None:
        if not self.store_text:
            rec.prompt_text = rec.answer_text = None
        try:
            self._queue.put_nowait(rec)
        except queue.Full:
            self.dropped += 1
            if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                log.warning("usage ledger queue full: %d records dropped so far", self.dropped)

    def _writer(self, conn: sqlite3.Connection) -> None:
        last_retention = 0.0
        running = True
        while running:
            try:
                item: _Item = self._queue.get(timeout=1.0)
            except queue.Empty:
                item = _IDLE  # an idle tick: only housekeeping
            if isinstance(item, UsageRecord) and self._queue.qsize() < _BATCH:
                time.sleep(_LINGER)  # gather a batch: one transaction (and one wake-up) per interval, not per request
            batch: list[UsageRecord] = []
            flushes: list[threading.Event] = []
            while True:
                if item is None:
                    running = False
                elif isinstance(item, threading.Event):
                    flushes.append(item)
                else:
                    batch.append(item)
                if not running or len(batch) >= _BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            self._write(conn, batch)
            if self.retention_days and time.time() - last_retention > _RETENTION_EVERY:
                last_retention = time.time()
                self._apply_retention(conn)
            for ev in flushes:
                ev.set()
        conn.close()

    def _write(self, conn: sqlite3.Connection, batch: list[UsageRecord]) -> None:
        if not batch:
            return
        try:
            with conn:
                conn.executemany(_INSERT, [r.row() for r in batch])
            self.written += len(batch)
        except sqlite3.Error as exc:
            log.error("usage ledger: %d records not written: %s", len(batch), exc)

    def _apply_retention(self, conn: sqlite3.Connection) -> None:
        cutoff = time.time() - self.retention_days * 86400
        try:
            with conn:
                removed = conn.execute("DELETE FROM usage WHERE ts < ?", (cutoff,)).rowcount
            if removed:
                log.info("usage ledger: %d records older than %d days removed", removed, self.retention_days)
        except sqlite3.Error as exc:
            log.error("usage ledger retention failed: %s", exc)

    def _flush(self, timeout: float = 5.0) -> None:
        """Wait until everything recorded before now is written (reads then see it)."""
        if self._thread is None:
            return
        done = threading.Event()
        try:
            self._queue.put(done, timeout=timeout)
        except queue.Full:
            return
        done.wait(timeout)

    # ---- reading ---------------------------------------------------------------------------------
    def _read(self, fn: Any, *args: Any) -> Any:
        self._flush()
        conn = connect(self.path, readonly=True)
        try:
            return fn(conn, *args)
        finally:
            conn.close()

    async def rows(self, q: UsageQuery) -> list[dict[str, Any]]:
        return list(await asyncio.to_thread(self._read, query_rows, q))

    async def totals(self, q: UsageQuery, group_by: list[str]) -> list[dict[str, Any]]:
        return list(await asyncio.to_thread(self._read, query_totals, q, group_by))

    async def tokens_since(self, since: float) -> dict[str, int]:
        return dict(await asyncio.to_thread(self._read, _tokens_by_key_id, since))


def _tokens_by_key_id(conn: sqlite3.Connection, since: float) -> list[tuple[str, int]]:
    cur = conn.execute(
        "SELECT key_id, COALESCE(SUM(prompt_tokens), 0) + COALESCE(SUM(completion_tokens), 0) FROM usage "
        "WHERE ts >= ? AND key_id IS NOT NULL GROUP BY key_id", (since,),
    )
    return [(str(k), int(n)) for k, n in cur.fetchall()]
