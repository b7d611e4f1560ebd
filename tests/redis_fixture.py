"""A real `redis-server` for the scale-out tests: one per test module, on a free loopback port, nothing on disk.

Installed by `scripts/install_test_deps.sh` (the distribution's package); missing it fails the run in CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Iterator

import pytest
import redis

from helpers import free_port


@dataclass
class RedisServer:
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> None:
        """Start again on the same port (after ``stop``), empty."""
        self.proc = start_redis(self.port)

    def flush(self) -> None:
        with self.client() as c:
            c.flushall()


def start_redis(port: int, timeout: float = 10.0) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with redis.Redis(host="127.0.0.1", port=port, socket_timeout=1) as c:
                if c.ping():
                    return proc
        except redis.RedisError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"redis-server did not answer on port {port}")


@pytest.fixture(scope="module", name="redis_server")
def redis_server_fixture() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        message = "redis-server is missing (scripts/install_test_deps.sh installs it: apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    port = free_port()
    server = RedisServer(port, start_redis(port))
    try:
        yield server
    finally:
        server.stop()
