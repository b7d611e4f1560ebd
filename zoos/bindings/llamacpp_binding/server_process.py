"""One ``llama-server`` child process: loopback port, start until /health answers, logs, stop.

The child listens on 127.0.0.1 only, on a free port picked just before it starts (a start that loses the
port to another program is retried on a new one). Its output goes to our logger (lines cut to a bounded
length; the last lines are kept to explain a failed start or a crash). On Linux the child gets SIGTERM
when the thread that started it dies, so even a killed server leaves no orphan; a normal stop sends
SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("lollms_server.bindings.llamacpp.server")

MAX_LINE = 400  # characters of one forwarded log line
TAIL_LINES = 30  # lines kept to explain a failure
START_TIMEOUT = 180.0  # seconds for the model to load
STOP_GRACE = 5.0


class ServerStartError(RuntimeError):
    """llama-server did not come up; the message holds its last log lines."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> Callable[[], None] | None:
    """Linux: ask the kernel to SIGTERM the child when its parent thread dies (no orphan after a crash)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    prctl = libc.prctl

    def set_pdeathsig() -> None:
        prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG

    return set_pdeathsig


class LlamaServerProcess:
    """A started ``llama-server`` (``start`` -> ``url``; ``stop``); ``exited`` tells whether it died."""

    def __init__(self, binary: Path, args: list[str], label: str) -> None:
        self.binary, self.args, self.label = binary, args, label
        self.port = 0
        self.proc: asyncio.subprocess.Process | None = None
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._reader: asyncio.Task[None] | None = None
        self.stopping = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def exited(self) -> bool:
        return self.proc is None or self.proc.returncode is not None

    def last_lines(self, n: int = 6) -> str:
        return " | ".join(list(self.tail)[-n:])

    async def start(self, timeout: float = START_TIMEOUT) -> None:
        for attempt in range(3):
            self.port = free_port()
            try:
                await self._start_once(timeout)
                return
            except ServerStartError:
                if attempt < 2 and "bind" in self.last_lines(TAIL_LINES).lower():
                    log.info("llama-server %s: port %d was taken; trying another", self.label, self.port)
                    continue
                raise

    async def _start_once(self, timeout: float) -> None:
        import httpx  # not at server start-up: only once a model starts

        self.tail.clear()
        self.stopping = False
        argv = [str(self.binary), *self.args, "--host", "127.0.0.1", "--port", str(self.port)]
        log.info("starting llama-server for %s on 127.0.0.1:%d", self.label, self.port)
        self.proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, preexec_fn=_die_with_parent())
        self._reader = asyncio.create_task(self._forward_logs(self.proc))
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                if self.proc.returncode is not None:
                    await self._drain()
                    raise ServerStartError(f"llama-server exited with code {self.proc.returncode} while starting: "
                                           f"{self.last_lines()}")
                try:
                    r = await client.get(f"{self.url}/health")
                    if r.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    await self.stop()
                    raise ServerStartError(f"llama-server did not answer /health within {timeout:.0f}s: {self.last_lines()}")
                await asyncio.sleep(0.05)

    async def _forward_logs(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while True:
            try:
                raw = await proc.stdout.readline()
            except ValueError:  # a line longer than the stream limit: skip what is buffered
                continue
            if not raw:
                break
            line = raw.decode("utf-8", errors="replace").rstrip()[:MAX_LINE]
            if not line:
                continue
            self.tail.append(line)
            level = logging.WARNING if ("error" in line.lower() or "failed" in line.lower()) else logging.DEBUG
            log.log(level, "llama-server %s: %s", self.label, line)

    async def _drain(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._reader), 2.0)

    async def wait(self) -> int:
        assert self.proc is not None
        code = await self.proc.wait()
        await self._drain()
        return code

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; returns once the process is gone."""
        proc = self.proc
        self.stopping = True
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), STOP_GRACE)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        await self._drain()
        log.info("llama-server for %s stopped (exit code %s)", self.label, proc.returncode)
