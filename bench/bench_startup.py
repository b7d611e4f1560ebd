"""Start-up with the default configuration: time to /health and /health/ready, idle memory, first answer.

    python bench/bench_startup.py            # 3 runs, prints each and the median
    python bench/bench_startup.py --runs 5

Writes the configuration `lollms-server init` writes (default preset) into a temporary folder and compiles
the package's bytecode as the installers do (without it, every start compiles the sources again wherever
they are read-only or PYTHONDONTWRITEBYTECODE is set), then per run starts a real `lollms-server serve` process and measures, from the moment the process is spawned:
time until /health answers, time until /health/ready answers 200 and the CPU time the process used until
then (on a shared machine the wall time mostly measures the wait for a core), the process RSS while idle (before any
request), then the time of a first 8-token generation (it loads the default model) and the RSS after it.
Targets (issue "speed under load"): ready <= 0.5 s, idle RSS <= 120 MB.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml
from proc_cpu import cpu_seconds

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from helpers import free_port  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_for(client: httpx.Client, url: str, deadline: float) -> float:
    while time.perf_counter() < deadline:
        try:
            if client.get(url).status_code == 200:
                return time.perf_counter()
        except httpx.HTTPError:
            pass
        time.sleep(0.005)
    raise TimeoutError(url)


def compile_bytecode() -> None:
    """What the installers do: without it every start compiles the sources (PYTHONDONTWRITEBYTECODE, read-only folder)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", "lollms_server", "zoos"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)


def one_run(config_dir: Path, key: str) -> dict[str, float]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # one client for the polls: httpx.get() builds a client and its SSL context on each call (about 24 ms of
    # CPU), so polling every 5 ms with it kept most of a core busy beside the start-up being measured
    poll = httpx.Client(timeout=0.5)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lollms_server", "serve", "--config-dir", str(config_dir), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        t_health = wait_for(poll, f"{base}/health", t0 + 60)
        t_ready = wait_for(poll, f"{base}/health/ready", t0 + 60)
        ready_cpu = cpu_seconds(proc.pid)
        time.sleep(0.5)  # settle: nothing should be loading in the background
        idle = rss_mb(proc.pid)
        body = {"input_data": [{"type": "text", "role": "user_prompt", "data": "Say hi"}],
                "parameters": {"max_tokens": 8, "temperature": 0}}
        t1 = time.perf_counter()
        r = httpx.post(f"{base}/api/v1/generate", json=body, headers={"X-API-Key": key}, timeout=120)
        first = time.perf_counter() - t1
        r.raise_for_status()
        return {"health_s": t_health - t0, "ready_s": t_ready - t0, "ready_cpu_s": ready_cpu, "idle_rss_mb": idle,
                "first_answer_s": first, "rss_after_mb": rss_mb(proc.pid)}
    finally:
        poll.close()
        proc.terminate()
        proc.wait(timeout=20)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    compile_bytecode()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "cfg"
        subprocess.run([sys.executable, "-m", "lollms_server", "init", "--config-dir", str(cfg)], check=True,
                       capture_output=True, stdin=subprocess.DEVNULL)
        key = str(yaml.safe_load((cfg / "main_config.yaml").read_text())["security"]["allowed_api_keys"][0])
        runs = [one_run(cfg, key) for _ in range(args.runs)]
    cols = ["health_s", "ready_s", "ready_cpu_s", "idle_rss_mb", "first_answer_s", "rss_after_mb"]
    print(" ".join(f"{c:>15}" for c in ["run", *cols]))
    for i, r in enumerate(runs, 1):
        print(" ".join([f"{i:>15}", *(f"{r[c]:>15.3f}" for c in cols)]))
    print(" ".join([f"{'median':>15}", *(f"{statistics.median(r[c] for r in runs):>15.3f}" for c in cols)]))


if __name__ == "__main__":
    main()
