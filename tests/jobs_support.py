"""Helpers shared by the jobs tests: an SSE reader that keeps event ids, and polling a job to an end."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

TERMINAL = ("succeeded", "failed", "cancelled")


@dataclass
class Event:
    id: str
    data: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.data["type"])


async def read_events(client: httpx.AsyncClient, url: str, *, headers: dict[str, str] | None = None,
                      params: dict[str, str] | None = None, stop_after: int | None = None,
                      timeout: float = 60) -> tuple[list[Event], int]:
    """Events of an SSE response (``stop_after``: disconnect after that many); also the number of ping comments."""
    events: list[Event] = []
    pings = 0
    current: dict[str, str] = {}

    async def run() -> None:
        nonlocal pings
        async with client.stream("GET", url, headers=headers, params=params) as r:
            assert r.status_code == 200, (r.status_code, await r.aread())
            assert r.headers["content-type"].startswith("text/event-stream"), r.headers
            async for line in r.aiter_lines():
                if line.startswith(":"):
                    pings += 1
                elif line.startswith("id:"):
                    current["id"] = line[3:].strip()
                elif line.startswith("data:"):
                    current["data"] = line[5:].strip()
                elif line == "" and current:
                    assert "id" in current, f"an event without id: {current}"
                    events.append(Event(current["id"], json.loads(current["data"])))
                    current.clear()
                    if stop_after is not None and len(events) >= stop_after:
                        return  # leaving the block closes the connection: a client that went away

    await asyncio.wait_for(run(), timeout)
    return events, pings


async def wait_state(client: httpx.AsyncClient, url: str, states: tuple[str, ...] = TERMINAL,
                     timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = await client.get(url)
        assert r.status_code == 200, r.text
        job: dict[str, Any] = r.json()
        if job["state"] in states or time.monotonic() > deadline:
            return job
        await asyncio.sleep(0.05)


def ask(text: str, binding: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"input_data": [{"type": "text", "role": "user_prompt", "data": text}], **extra}
    if binding:
        body["binding_name"] = binding
    return body


def words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))


class WorkerProcess:
    """A real `lollms-server worker` process (ready once it says it runs jobs)."""

    def __init__(self, config_dir: Path, env: dict[str, str] | None = None, name: str = "worker") -> None:
        self.config_dir = config_dir
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.log_path = config_dir / f"{name}-{time.monotonic_ns()}.log"
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 60.0) -> "WorkerProcess":
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "lollms_server", "worker", "--config-dir", str(self.config_dir)],
                                     stdout=self._log, stderr=subprocess.STDOUT, env=self.env, text=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log()}")
            if "running jobs from Redis" in self.log():
                return self
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"worker did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()
        return self.proc.returncode if self.proc else None
