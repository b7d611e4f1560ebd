"""Start-up defaults that use the machine: lazy model loading, readiness, threads per physical core.

A real server process started from the configuration `lollms-server init` writes (the default preset).
Start-up time and idle memory are figures, printed by bench/bench_startup.py, not asserted here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest
import yaml
from helpers import server

from lollms_server.core.machine import physical_cores

pytestmark = [pytest.mark.e2e, pytest.mark.llama]

HEAVY_BACKENDS = ("llama_cpp", "faster_whisper", "ctranslate2", "piper", "onnxruntime", "torch")


def _key(config_dir: Path) -> str:
    main = yaml.safe_load((config_dir / "main_config.yaml").read_text())
    return str(main["security"]["allowed_api_keys"][0])


def test_default_model_loads_on_first_request_with_one_thread_per_core(default_config: Path) -> None:
    headers = {"X-API-Key": _key(default_config)}
    with server(default_config) as srv:
        ready = httpx.get(f"{srv.base_url}/health/ready", timeout=10)
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        assert ready.json()["instances"]["default_llamacpp"] == "ready"
        info = httpx.get(f"{srv.base_url}/api/v1/get_model_info/default_llamacpp", headers=headers, timeout=30).json()
        assert info["details"]["loaded"] is False  # nothing loaded before the first request
        assert info["details"]["n_threads"] == physical_cores()
        body = {"input_data": [{"type": "text", "role": "user_prompt", "data": "Say hi"}],
                "parameters": {"max_tokens": 4, "temperature": 0}}
        r = httpx.post(f"{srv.base_url}/api/v1/generate", json=body, headers=headers, timeout=120)
        assert r.status_code == 200, r.text
        assert r.json()["output"][0]["type"] == "text"
        after = httpx.get(f"{srv.base_url}/api/v1/get_model_info/default_llamacpp", headers=headers, timeout=30).json()
        assert after["details"]["loaded"] is True


def test_start_up_imports_no_inference_backend(default_config: Path) -> None:
    """Building every default instance checks that backends are installed without importing them."""
    code = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from lollms_server.core.config import load_server_config\n"
        "from lollms_server.core.services import build_services\n"
        f"services = asyncio.run(build_services(load_server_config(Path({str(default_config)!r}))))\n"
        "failed = {n: r.error for n, r in services.bindings.instances.items() if r.error}\n"
        "assert not failed, failed\n"
        f"print(sorted(m for m in {HEAVY_BACKENDS!r} if m in sys.modules))\n"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_physical_cores_counts_hyperthreads_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lollms_server.core import machine

    for cpu, siblings in {0: "0,2", 1: "1,3", 2: "0,2", 3: "1,3"}.items():  # 2 cores with 2 threads each
        (tmp_path / f"cpu{cpu}" / "topology").mkdir(parents=True)
        (tmp_path / f"cpu{cpu}" / "topology" / "thread_siblings_list").write_text(siblings + "\n")
    monkeypatch.setattr(machine, "_CPU_SYSFS", tmp_path)
    monkeypatch.setattr(machine, "_usable_cpus", lambda: {0, 1, 2, 3})
    machine.physical_cores.cache_clear()
    try:
        assert machine.physical_cores() == 2
        monkeypatch.setattr(machine, "_usable_cpus", lambda: {0, 2})  # pinned to one core's two threads
        machine.physical_cores.cache_clear()
        assert machine.physical_cores() == 1
    finally:
        machine.physical_cores.cache_clear()
