"""The write path every stored usage ledger shares: a bounded queue drained in batches by one writer thread.

``record`` never blocks the request: a full queue drops the record (counted and logged). The queue is a
``queue.SimpleQueue`` (its ``put`` takes no lock in Python code) that ``record`` keeps within ``max_queue``.
The writer gathers what arrived within ``LINGER`` seconds (at most ``BATCH`` records) and hands it to the
store's ``_write``.
A store whose target is unreachable (``_write`` returns False) keeps that batch and retries it every
``RETRY_SECONDS``; meanwhile records wait in the queue, so an outage loses at most what does not fit in it.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from typing import Literal, Union

from lollms_server.core.usage import UsageRecord

log = logging.getLogger("lollms_server.usage")

BATCH = 500
LINGER = 0.2  # seconds the writer waits after the first record of a batch
RETRY_SECONDS = 1.0
RETENTION_EVERY = 3600.0

_Item = Union[UsageRecord, threading.Event, None]
WriteResult = Literal["written", "retry", "lost"]
_IDLE = threading.Event()


class QueuedLedger:
    """Base of the SQLite and Redis ledgers; subclasses provide ``_open``, ``_write``, ``_retention``, ``_close_target``."""

    recording = True

    def __init__(self, *, store_text: bool, retention_days: int, max_queue: int) -> None:
        self.store_text = store_text
        self.retention_days = retention_days
        self.max_queue = max_queue
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()  # bounded by record()
        self._thread: threading.Thread | None = None
        self._held: list[UsageRecord] = []  # a batch the target refused for now, retried first
        self._closing = threading.Event()
        self.dropped = 0
        self.written = 0
        self.write_failures = 0

    # ---- what a store provides ------------------------------------------------------------------
    def _open(self) -> None:
        """Blocking; runs once at start-up (raise to stop the server, e.g. an unusable database file)."""

    def _write(self, batch: list[UsageRecord]) -> WriteResult:
        """Write ``batch``: "retry" = the target is unreachable now (the batch is kept and retried); "lost" = logged."""
        raise NotImplementedError

    def _retention(self) -> None:
        """Remove records older than ``retention_days`` (called at most once per RETENTION_EVERY)."""

    def _close_target(self) -> None:
        """Release the connection (called by the writer thread as it ends)."""

    # ---- life cycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        await asyncio.to_thread(self._open)
        self._thread = threading.Thread(target=self._writer, name="usage-ledger", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        if self._thread is None:
            return
        self._closing.set()
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join, 10)
        self._thread = None

    @property
    def queued(self) -> int:
        return self._queue.qsize() + len(self._held)

    # ---- writing ---------------------------------------------------------------------------------
    def record(self, rec: UsageRecord) -> None:
        if not self.store_text:
            rec.prompt_text = rec.answer_text = None
        if self._queue.qsize() < self.max_queue:
            self._queue.put(rec)
        else:
            self.dropped += 1
            if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                log.warning("usage ledger queue full (%d records): %d records dropped so far", self.max_queue, self.dropped)

    def _retry_held(self, final: bool = False) -> None:
        if not self._held:
            return
        result = self._write(self._held)
        if result == "lost":
            self.dropped += len(self._held)
            self._held = []
        elif result == "written":
            log.warning("usage ledger: the store answers again; %d held records written", len(self._held))
            self.written += len(self._held)
            self._held = []
        elif final:
            self.dropped += len(self._held) + self._queue.qsize()
            log.error("usage ledger: the store is unreachable at shutdown; %d records are lost",
                      len(self._held) + self._queue.qsize())
        else:
            self._closing.wait(RETRY_SECONDS)

    def _writer(self) -> None:
        last_retention = 0.0
        running = True
        try:
            while running:
                if self._held and not self._closing.is_set():
                    self._retry_held()
                    if self._held:
                        continue  # records wait in the (bounded) queue meanwhile
                try:
                    item: _Item = self._queue.get(timeout=1.0)
                except queue.Empty:
                    item = _IDLE  # an idle tick: only housekeeping
                if isinstance(item, UsageRecord) and self._queue.qsize() < BATCH:
                    time.sleep(LINGER)  # gather a batch: one transaction (and one wake-up) per interval, not per request
                batch: list[UsageRecord] = []
                flushes: list[threading.Event] = []
                while True:
                    if item is None:
                        running = False
                    elif isinstance(item, threading.Event):
                        flushes.append(item)
                    else:
                        batch.append(item)
                    if not running or len(batch) >= BATCH:
                        break
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                if batch and self._held:  # closing while the store is unreachable: one last try at the end
                    self._held.extend(batch)
                elif batch:
                    result = self._write(batch)
                    if result == "written":
                        self.written += len(batch)
                    elif result == "lost":
                        self.dropped += len(batch)
                    else:
                        self.write_failures += 1
                        self._held = batch
                        log.error("usage ledger: the store is unreachable; %d records held, retrying every %.0fs "
                                  "(at most %d more wait in the queue)", len(batch), RETRY_SECONDS, self.max_queue)
                if self.retention_days and time.time() - last_retention > RETENTION_EVERY:
                    last_retention = time.time()
                    self._retention()
                for ev in flushes:
                    ev.set()
            self._retry_held(final=True)
        finally:
            self._close_target()

    def _flush(self, timeout: float = 5.0) -> None:
        """Wait until everything recorded before now is written (reads then see it)."""
        if self._thread is None or self._held:
            return  # nothing to wait for while the store is unreachable
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout)
