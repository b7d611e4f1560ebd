"""Helpers for the web UI tests: build the UI when needed, find Chromium, keep screenshots."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import struct
import subprocess
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from helpers import free_port
from lollms_server.core.paths import PROJECT_ROOT

WEBUI_DIR: Path = PROJECT_ROOT / "webui"
DIST_DIR: Path = WEBUI_DIR / "dist"
ARTIFACTS_DIR: Path = PROJECT_ROOT / "test-artifacts" / "webui"
CHROMIUM: str = os.environ.get("LOLLMS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS: list[str] = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(reason: str) -> None:
    """Fail in CI (a missing tool must not pass silently there), skip on a developer machine."""
    if _in_ci():
        pytest.fail(f"{reason} (CI=true: required)")
    pytest.skip(reason)


def _newest_source_mtime() -> float:
    files = [*WEBUI_DIR.joinpath("src").rglob("*"), *(WEBUI_DIR / n for n in ("index.html", "package-lock.json", "vite.config.ts"))]
    return max(f.stat().st_mtime for f in files if f.is_file())


def ensure_built() -> Path:
    """webui/dist, built now (scripts/install_webui.sh) when missing or older than the sources."""
    index = DIST_DIR / "index.html"
    if index.is_file() and index.stat().st_mtime >= _newest_source_mtime():
        return DIST_DIR
    if shutil.which("npm") is None:
        missing("npm is not installed: cannot build the web UI")
    result = subprocess.run(["bash", str(PROJECT_ROOT / "scripts" / "install_webui.sh")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"web UI build failed:\n{result.stdout}\n{result.stderr}"
    return DIST_DIR


def require_chromium() -> str:
    if not Path(CHROMIUM).exists():
        missing(f"Chromium not found at {CHROMIUM}: run scripts/install_test_deps.sh (apt-get install chromium)")
    return CHROMIUM


# Where the UI sends a generation: chat answers go to POST /api/v1/jobs (the body is generate's, and a page
# reload resumes the answer); titles and spoken replies, and servers without jobs, use POST /api/v1/generate.
GENERATION_PATHS: tuple[str, ...] = ("/api/v1/jobs", "/api/v1/generate")


def is_generation(request: Any) -> bool:
    """A Playwright request that starts a generation (its post_data is a GenerateRequest)."""
    return bool(request.method == "POST" and request.url.split("?")[0].endswith(GENERATION_PATHS))


def artifact(name: str) -> str:
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    return str(ARTIFACTS_DIR / name)


@contextlib.contextmanager
def launched_chromium(extra_args: list[str] | None = None) -> Iterator[Any]:
    """Debian's Chromium driven by the playwright package (never a downloaded browser)."""
    executable = require_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the playwright package (dev extra) is not installed")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=[*CHROMIUM_FLAGS, *(extra_args or [])])
        try:
            yield browser
        finally:
            browser.close()


class TcpRelay:
    """A TCP relay the browser talks to instead of the server, standing for a network path or a load balancer:
    its open connections can be cut (a network drop), and new ones can be sent to another port (another replica)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        """Drop every open connection with a reset, as a network failure would; new ones go through again."""
        with self._lock:
            for s in self._open:
                try:  # linger 0: closing sends a reset; shutdown first wakes the relay thread blocked on it
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            self._open = []

    def close(self) -> None:
        self._listener.close()
        self.cut()

