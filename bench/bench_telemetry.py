"""Cost of the usage ledger and the Prometheus metrics: dummy binding at zero delay, on vs off.

    python bench/bench_telemetry.py                         # concurrency 1 and 8, JSON and SSE, 1000 requests each
    python bench/bench_telemetry.py --requests 3000 --rounds 3

Two real server processes on 127.0.0.1 with the same configuration except ``usage.enabled`` and
``metrics.enabled``; levels are measured in small alternating blocks (on, off, on, off…) so background
load hits both alike. Prints requests/s, p50/p99 latency and the server process's CPU time per request
(user + system, from /proc: the figure least disturbed by other load on the machine), and the rows the
ledger wrote.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent / "tests"))
from bench_overhead import level  # noqa: E402
from loadgen import percentile  # noqa: E402
from proc_cpu import cpu_seconds  # noqa: E402
from helpers import API_KEY, ServerProcess, write_config  # noqa: E402


async def in_process_cost(n: int = 20000) -> None:
    """CPU of the telemetry itself per generation (trace, ledger row, metrics), without HTTP around it."""
    from lollms_server.core.bindings.base import GenerationTask
    from lollms_server.core.metrics import Metrics
    from lollms_server.core.telemetry import Caller, Telemetry
    from lollms_server.core.usage_sqlite import SqliteUsageLedger

    with tempfile.TemporaryDirectory(prefix="lollms-telemetry-") as tmp:
        metrics = Metrics()
        tel = Telemetry(SqliteUsageLedger(Path(tmp) / "usage.sqlite"), metrics)
        await tel.start()
        task = GenerationTask(request_id="r", generation_type="ttt", model_name="m", prompt="p")
        task.set_usage(3, 5)
        t0 = time.process_time()
        for _ in range(n):
            trace = tel.trace(Caller("api"), "r", "ttt", "dummy", "m", None, True)
            trace.first_token()
            trace.end("ok", task, [])
            metrics.http.labels("POST", "/api/v1/generate", "200").inc()
            metrics.http_latency.labels("POST", "/api/v1/generate").observe(0.001)
        await tel.close()  # the writer thread's work is in the process time too
        per = (time.process_time() - t0) / n * 1e6
    print(f"in-process: {per:.1f} us of CPU per generation (trace + ledger row written + metrics), {n} generations")


def config(folder: Path, on: bool) -> Path:
    write_config(folder, {"dummy": ("dummy_binding", {"delay": 0.0})}, main={
        "logging": {"log_level": "WARNING", "level": 30},
        "usage": {"enabled": on}, "metrics": {"enabled": on},
    })
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=200, help="requests per block")
    ap.add_argument("--levels", default="1,8")
    ap.add_argument("--rounds", type=int, default=8, help="alternating blocks per level and server")
    args = ap.parse_args()
    asyncio.run(in_process_cost())
    with tempfile.TemporaryDirectory(prefix="lollms-telemetry-") as tmp:
        on_dir, off_dir = config(Path(tmp) / "on", True), config(Path(tmp) / "off", False)
        with ServerProcess(on_dir) as on_srv, ServerProcess(off_dir) as off_srv:
            head = (f"{'mode':>6}{'ledger+metrics':>16}{'conc':>6}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
                    f"{'CPU us/req':>12}{'errors':>8}")
            print(f"dummy_binding, delay 0, {args.requests} requests x {args.rounds} rounds per line")
            print(head)
            print("-" * len(head))
            for stream in (False, True):
                for c in (int(x) for x in args.levels.split(",")):
                    results: dict[str, list[float]] = {"on": [], "off": []}
                    rates: dict[str, list[float]] = {"on": [], "off": []}
                    errors = {"on": 0, "off": 0}
                    cpu = {"on": 0.0, "off": 0.0}
                    sent = {"on": 0, "off": 0}
                    for _ in range(args.rounds):
                        for label, srv in (("on", on_srv), ("off", off_srv)):
                            assert srv.proc is not None
                            before = cpu_seconds(srv.proc.pid)
                            elapsed, lat, err = asyncio.run(level(srv.base_url, c, args.requests, stream))
                            cpu[label] += cpu_seconds(srv.proc.pid) - before
                            sent[label] += len(lat) + min(20, args.requests)  # level() warms up with 20 more
                            results[label] += [x * 1000 for x in lat]
                            rates[label].append(len(lat) / elapsed)
                            errors[label] += err
                    for label in ("on", "off"):
                        ms = results[label]
                        print(f"{'SSE' if stream else 'JSON':>6}{label:>16}{c:>6}{statistics.mean(rates[label]):>9.0f}"
                              f"{percentile(ms, .5):>9.2f}{percentile(ms, .99):>9.2f}"
                              f"{cpu[label] / sent[label] * 1e6:>12.0f}{errors[label]:>8}")
            time.sleep(0.5)
            rows = httpx.get(f"{on_srv.base_url}/api/v1/usage", headers={"X-API-Key": API_KEY},
                             params={"group_by": "surface", "limit": 10}).json()["items"]
            print("ledger rows written by the 'on' server:", sum(r["requests"] for r in rows))


if __name__ == "__main__":
    main()
