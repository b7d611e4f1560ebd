"""Shared test helpers: config folders, an in-process client, and real server processes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import httpx

from lollms_server.app import create_app
from lollms_server.core.config_schema import MAIN_SCHEMA
from lollms_server.core.guarded_config import save_guarded_atomic
from lollms_server.core.presets import zoo_registry

API_KEY = "test-key-0123456789"
_REGISTRY = None


def registry():  # type: ignore[no-untyped-def]
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = zoo_registry()
    return _REGISTRY


def write_instance(config_dir: Path, name: str, type_name: str, values: dict[str, Any] | None = None,
                   *, ext: str = "yaml", key: bytes | None = None, bindings_dir: Path | None = None) -> Path:
    """Write one binding instance file validated against the zoo card of ``type_name``."""
    btype = registry().types[type_name]
    path = (bindings_dir or config_dir / "bindings") / f"{name}.{ext}"
    save_guarded_atomic(path, btype.card.full_instance_schema(),
                        {"type": type_name, "binding_instance_name": name, **(values or {})}, key, backup=False)
    return path


def write_config(
    config_dir: Path,
    instances: dict[str, tuple[str, dict[str, Any]]] | None = None,
    *,
    defaults: dict[str, Any] | None = None,
    api_keys: list[str] | None = None,
    main: dict[str, dict[str, Any]] | None = None,
    ext: str = "yaml",
    key: bytes | None = None,
    write_instances: bool = True,
) -> Path:
    """A complete config folder: main config + instance files. Default: one dummy instance as ttt default."""
    instances = instances if instances is not None else {"dummy": ("dummy_binding", {})}
    if write_instances:
        for name, (type_name, inst_values) in instances.items():
            write_instance(config_dir, name, type_name, inst_values, key=key)
    values: dict[str, Any] = {
        "security": {"allowed_api_keys": [API_KEY] if api_keys is None else api_keys},
        "bindings_map": {n: t for n, (t, _) in instances.items()},
        "defaults": defaults if defaults is not None else ({"ttt_binding": next(iter(instances))} if instances else {}),
        "paths": {
            "personalities_folder": str(config_dir / "personal_personalities"),
            "bindings_folder": str(config_dir / "personal_bindings"),
            "functions_folder": str(config_dir / "personal_functions"),
            "models_folder": str(config_dir / "models"),
        },
        "webui": {"enable_ui": False},
    }
    for section, extra in (main or {}).items():
        values.setdefault(section, {}).update(extra)
    path = config_dir / f"main_config.{ext}"
    save_guarded_atomic(path, MAIN_SCHEMA, values, backup=False)
    return path


def write_speech_config(config_dir: Path) -> Path:
    """Piper instance "voice" (tts default) and Whisper instance "ears" (stt default), empty models folder."""
    models = config_dir / "models"
    (models / "tts").mkdir(parents=True)
    (models / "stt").mkdir(parents=True)
    return write_config(
        config_dir,
        {"voice": ("piper_tts_binding", {"models_folder": str(models)}),
         "ears": ("whisper_stt_binding", {"models_folder": str(models), "beam_size": 1})},
        defaults={"tts_binding": "voice", "stt_binding": "ears"},
    )


@contextlib.asynccontextmanager
async def api_client(config_dir: Path, api_key: str | None = API_KEY) -> AsyncIterator[httpx.AsyncClient]:
    """In-process client (httpx ASGITransport) with the app's lifespan running."""
    app = create_app(config_dir)
    headers = {"X-API-Key": api_key} if api_key else {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers, timeout=60) as client:
            yield client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """A real `lollms-server` process on a free port."""

    def __init__(self, config_dir: Path, env: dict[str, str] | None = None, port: int | None = None,
                 cwd: Path | None = None) -> None:
        self.config_dir = config_dir
        self.cwd = cwd
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc: subprocess.Popen[str] | None = None
        self.log_path = config_dir / f"server-{self.port}.log"

    def start(self, timeout: float = 60.0) -> "ServerProcess":
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lollms_server", "serve", "--config-dir", str(self.config_dir), "--port", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT, env=self.env, text=True, cwd=self.cwd,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"server did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lollms_server", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout, stdin=subprocess.DEVNULL)


def sse_events(text: str) -> list[dict[str, Any]]:
    import json

    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


@contextlib.contextmanager
def server(config_dir: Path, **kw: Any) -> Iterator[ServerProcess]:
    with ServerProcess(config_dir, **kw) as s:
        yield s
