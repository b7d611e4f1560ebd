"""A real HAProxy running the shipped recipe (`deploy/haproxy.cfg`) on free loopback ports, in the foreground.

Installed by `scripts/install_test_deps.sh` (the distribution's package); the system service is never used.
The recipe reads its addresses from the environment, so the file under test is the file operators deploy.
"""

from __future__ import annotations

import csv
import grp
import io
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from helpers import free_port

RECIPE = Path(__file__).resolve().parents[1] / "deploy" / "haproxy.cfg"


def haproxy_missing() -> None:
    """Skip outside CI, fail in CI, when haproxy is not installed."""
    if shutil.which("haproxy") is None:
        message = "haproxy is missing (scripts/install_test_deps.sh installs it: apt-get install haproxy)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@dataclass
class HAProxy:
    replicas: list[str]  # host:port of each replica, in the recipe's server order (replica1, replica2...)
    log_path: Path
    check_inter: str = "500ms"
    port: int = field(default_factory=free_port)
    stats_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_socket(self) -> Path:
        return self.log_path.with_name(f"haproxy-{self.port}.sock")

    def admin(self, command: str) -> str:
        """One command on the recipe's admin socket (what `socat stdio /run/haproxy/lollms-admin.sock` sends)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(self.admin_socket))
            s.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def env(self) -> dict[str, str]:
        env = {**os.environ, "LOLLMS_LB_BIND": f"127.0.0.1:{self.port}",
               "LOLLMS_LB_STATS_BIND": f"127.0.0.1:{self.stats_port}", "LOLLMS_LB_CHECK_INTER": self.check_inter,
               "LOLLMS_LB_ADMIN_SOCKET": str(self.admin_socket),
               # the recipe drops to the haproxy account; a test runs it as whoever runs the tests
               "LOLLMS_LB_USER": pwd.getpwuid(os.getuid()).pw_name, "LOLLMS_LB_GROUP": grp.getgrgid(os.getgid()).gr_name}
        for i, address in enumerate(self.replicas, start=1):
            env[f"LOLLMS_REPLICA_{i}"] = address
        return env

    def start(self, timeout: float = 15.0) -> "HAProxy":
        check = subprocess.run(["haproxy", "-c", "-q", "-f", str(RECIPE)], env=self.env(), capture_output=True, text=True)
        assert check.returncode == 0, f"deploy/haproxy.cfg is invalid:\n{check.stdout}{check.stderr}"
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", str(RECIPE)], env=self.env(), stdout=log,
                                     stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"haproxy exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if all(s == "UP" for s in self.server_states().values()):
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"haproxy did not see every replica ready:\n{self.server_states()}\n{self.log()}")

    def server_states(self) -> dict[str, str]:
        """Each server's state as HAProxy's health checks see it (UP, DOWN, "UP 1/2"...), from its stats CSV."""
        r = httpx.get(f"http://127.0.0.1:{self.stats_port}/stats;csv", timeout=5)
        r.raise_for_status()
        rows = csv.DictReader(io.StringIO(r.text.lstrip("# ")))
        return {row["svname"]: row["status"] for row in rows
                if row["pxname"] == "lollms_replicas" and row["svname"] not in ("FRONTEND", "BACKEND")}

    def wait_state(self, server: str, state: str, timeout: float = 15.0) -> float:
        """Seconds until ``server`` reaches ``state``; TimeoutError naming what HAProxy saw otherwise."""
        started = time.monotonic()
        seen: dict[str, str] = {}
        while time.monotonic() - started < timeout:
            seen = self.server_states()
            if seen.get(server) == state:
                return time.monotonic() - started
            time.sleep(0.1)
        raise TimeoutError(f"{server} not {state} after {timeout}s: {seen}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
