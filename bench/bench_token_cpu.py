"""CPU time per streamed token: lollms-server (llamacpp_binding, llama-server engine) and its llama-server child.

    python bench/bench_token_cpu.py                       # 20 streams of 64 tokens on /v1/chat/completions
    python bench/bench_token_cpu.py --requests 40 --route generate
    python bench/bench_token_cpu.py --options '{"parallel": 1}' --alone

CPU time (user + system, from the kernel) is robust on a shared machine where wall-clock speeds are not:
it says what each process spends per token, whatever else runs. ``--alone`` also drives a llama-server
started by hand with the same flags (no lollms-server in front) over its own ``/completion`` route,
to see what llama-server itself spends per token. The client's own CPU is not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))
sys.path.insert(0, str(BENCH))
from helpers import API_KEY, ServerProcess, write_config  # noqa: E402
from proc_cpu import cpu_precise  # noqa: E402
from sse_read import LLAMA_COMPLETION, LOLLMS_GENERATE, OPENAI_CHAT, timed_stream  # noqa: E402

PROMPTS = [
    "Write a long story about a dragon who learns to cook.",
    "Explain in detail how a bicycle works, part by part.",
    "Describe a walk through a busy market in a large city.",
    "List the planets of the solar system and say one thing about each.",
]


def cpu(proc: psutil.Process) -> float:
    return cpu_precise(proc.pid)


def sys_cpu(proc: psutil.Process) -> float:
    return float(proc.cpu_times().system)


def stream_chat(client: httpx.Client, prompt: str, max_tokens: int) -> tuple[int, float]:
    body = {"model": "llm", "messages": [{"role": "user", "content": prompt}], "stream": True,
            "stream_options": {"include_usage": True}, "temperature": 0.0, "repeat_penalty": 1.0,
            "max_tokens": max_tokens, "seed": 1}
    return timed_stream(client, "/v1/chat/completions", body, OPENAI_CHAT)


def stream_generate(client: httpx.Client, prompt: str, max_tokens: int) -> tuple[int, float]:
    body = {"input_data": [{"type": "text", "role": "user_prompt", "data": prompt}], "binding_name": "llm",
            "stream": True, "parameters": {"temperature": 0.0, "repeat_penalty": 1.0, "max_tokens": max_tokens, "seed": 1}}
    return timed_stream(client, "/api/v1/generate", body, LOLLMS_GENERATE)


def stream_completion(client: httpx.Client, prompt: str, max_tokens: int) -> tuple[int, float]:
    chatml = f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"  # SmolLM2's template
    body = {"prompt": chatml, "n_predict": max_tokens, "temperature": 0.0, "repeat_penalty": 1.0, "seed": 1,
            "stream": True, "cache_prompt": True}
    return timed_stream(client, "/completion", body, LLAMA_COMPLETION)


def llama_client(url: str) -> httpx.Client:
    """A client of llama-server itself: a new connection per request (llama-server may close a kept-alive one
    after a stream while the client sends the next request on it: "Server disconnected without sending a
    response")."""
    return httpx.Client(base_url=url, timeout=600, limits=httpx.Limits(max_keepalive_connections=0))


def decode_rate(n: int, first: float, total: float) -> float:
    return (n - 1) / (total - first) if n > 1 and total > first else 0.0


def pairs(run: Any, llama: psutil.Process, max_tokens: int, count: int) -> dict[str, float]:
    """Ours, then llama-server alone (same process, its /completion), prompt after prompt: decode tok/s of
    each (after the first token) and the median of ours / alone over the pairs (neighbours in time share
    the machine's background load)."""
    argv = llama.cmdline()
    direct = llama_client("http://127.0.0.1:" + argv[argv.index("--port") + 1])
    ratios, ours_rates, alone_rates = [], [], []
    for i in range(count):
        prompt = PROMPTS[i % len(PROMPTS)]
        t0 = time.perf_counter()
        n, first = run(prompt)
        a = decode_rate(n, first, time.perf_counter() - t0)
        t0 = time.perf_counter()
        m, first = stream_completion(direct, prompt, max_tokens)
        b = decode_rate(m, first, time.perf_counter() - t0)
        if a and b:
            ratios.append(a / b)
            ours_rates.append(a)
            alone_rates.append(b)
    return {"ours decode tok/s": statistics.median(ours_rates), "alone decode tok/s": statistics.median(alone_rates),
            "ours/alone median": statistics.median(ratios), "ratio p25": statistics.quantiles(ratios, n=4)[0],
            "ratio p75": statistics.quantiles(ratios, n=4)[2]}


def idle_rate(proc: psutil.Process, seconds: float = 3.0) -> float:
    """CPU seconds per second the process spends with no request (timers: the server's ticks, pings)."""
    before, t0 = cpu(proc), time.perf_counter()
    time.sleep(seconds)
    return (cpu(proc) - before) / (time.perf_counter() - t0)


def measure(procs: dict[str, psutil.Process], run: Any, requests: int, idle: dict[str, float] | None = None) -> dict[str, float]:
    """CPU ms per token of each process, over the whole run and the lower quartile of the requests (a busy
    machine inflates CPU time through cache misses and preemption: the quartile is closer to the cost on a
    quiet one). ``idle`` (CPU s/s with no request) is taken off, so that a slow run does not count the
    server's timers as per-token work."""
    idle = idle or {}
    start = {k: cpu(p) for k, p in procs.items()}
    start_sys = {k: sys_cpu(p) for k, p in procs.items()}
    per_request: dict[str, list[float]] = {k: [] for k in procs}
    t0 = time.perf_counter()
    tokens = 0
    ttfts = []
    for i in range(requests):
        before, t1 = {k: cpu(p) for k, p in procs.items()}, time.perf_counter()
        n, first = run(PROMPTS[i % len(PROMPTS)])
        spent = time.perf_counter() - t1
        for k, p in procs.items():
            per_request[k].append((cpu(p) - before[k] - idle.get(k, 0.0) * spent) * 1000 / max(n, 1))
        tokens += n
        ttfts.append(first)
    wall = time.perf_counter() - t0
    out: dict[str, float] = {}
    for k, p in procs.items():
        out[f"{k} ms/token"] = (cpu(p) - start[k] - idle.get(k, 0.0) * wall) * 1000 / max(tokens, 1)
        out[f"{k} ms/token p25"] = statistics.quantiles(per_request[k], n=4)[0] if len(per_request[k]) > 1 else per_request[k][0]
        out[f"{k} sys ms/token"] = (sys_cpu(p) - start_sys[k]) * 1000 / max(tokens, 1)
    out["tokens"] = tokens
    out["tok/s (wall)"] = tokens / wall
    out["TTFT p50 ms"] = sorted(ttfts)[len(ttfts) // 2] * 1000
    return {k: round(v, 3) for k, v in out.items()}


PROFILER = """
import cProfile, runpy, signal, sys, time
prof = cProfile.Profile(time.thread_time)  # CPU time of the event loop's thread, not wall time
signal.signal(signal.SIGUSR1, lambda *a: prof.enable())
mod, out = sys.argv[1], sys.argv[2]
signal.signal(signal.SIGUSR2, lambda *a: (prof.disable(), prof.dump_stats(out)))
sys.argv = [mod, *sys.argv[3:]]
runpy.run_module(mod, run_name="__main__", alter_sys=True)
"""


def _profiled_start(server: ServerProcess, out: str) -> Any:
    """ServerProcess.start with lollms-server under a CPU-time cProfile switched on by SIGUSR1, dumped by SIGUSR2."""
    real = sys.executable

    def start(timeout: float = 60.0) -> ServerProcess:
        folder = Path(tempfile.mkdtemp())
        (folder / "prof.py").write_text(PROFILER)
        wrapper = folder / "python"
        # python -m lollms_server ... -> python prof.py lollms_server OUT serve ...
        wrapper.write_text(f"#!/bin/sh\nshift\nmod=$1\nshift\nexec {real} {folder / 'prof.py'} $mod {out} \"$@\"\n")
        wrapper.chmod(0o755)
        sys.executable = str(wrapper)
        try:
            return ServerProcess.start(server, timeout)
        finally:
            sys.executable = real
    return start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--route", choices=("chat", "generate"), default="chat")
    ap.add_argument("--options", default="", help="JSON of llamacpp_binding instance options")
    ap.add_argument("--alone", action="store_true", help="also drive a llama-server with the same flags directly")
    ap.add_argument("--profile", default="", help="py-spy record lollms-server during the run into this file (.txt: collapsed)")
    ap.add_argument("--strace", default="", help="count lollms-server's system calls during the run into this file")
    ap.add_argument("--perf", default="", help="perf record lollms-server during the run into this file")
    ap.add_argument("--cprofile", default="", help="run lollms-server under cProfile, stats into this file")
    ap.add_argument("--pairs", type=int, default=0,
                    help="then N interleaved pairs (ours, then the same llama-server driven directly): median decode-speed ratio")
    ap.add_argument("--renice", type=int, default=0, help="nice value for lollms-server's event loop thread (llama-server keeps its own)")
    ap.add_argument("--keep", action="store_true", help="print the server URL and pid, wait for Enter before stopping")
    args = ap.parse_args()
    options = json.loads(args.options) if args.options else {}
    with tempfile.TemporaryDirectory(prefix="lollms-token-cpu-") as tmp:
        cfg = Path(tmp) / "cfg"
        write_config(cfg, {"llm": ("llamacpp_binding", {"n_ctx": 2048, **options})},
                     main={"logging": {"log_level": "WARNING", "level": 30}})
        server = ServerProcess(cfg)
        if args.cprofile:  # the server's main thread (the event loop) under cProfile, written when it stops
            server.start = _profiled_start(server, args.cprofile)  # type: ignore[method-assign]
        server.start(timeout=180)
        try:
            client = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {API_KEY}",
                                                                     "X-API-Key": API_KEY}, timeout=600)
            run = (lambda p: stream_chat(client, p, args.max_tokens)) if args.route == "chat" else \
                (lambda p: stream_generate(client, p, args.max_tokens))
            run("Hello!")  # starts llama-server
            assert server.proc is not None
            ours = psutil.Process(server.proc.pid)
            children = [c for c in ours.children(recursive=True) if "llama-server" in c.name()]
            procs = {"ours": ours, **({"llama-server": children[0]} if children else {})}
            for _ in range(2):
                run(PROMPTS[0])
            if args.renice:
                os.setpriority(os.PRIO_PROCESS, ours.pid, args.renice)
            idle = {"ours": idle_rate(ours)}
            spy = None
            if args.profile:
                fmt = "raw" if args.profile.endswith(".txt") else "flamegraph"
                spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(ours.pid), "-r", "200",
                                        "-f", fmt, "-o", args.profile, "--nonblocking"])
                time.sleep(1.0)
            if args.perf:
                spy = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-p", str(ours.pid), "-o", args.perf],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1.0)
            if args.strace:
                spy = subprocess.Popen(["strace", "-c", "-f", "-p", str(ours.pid), "-o", args.strace])
                time.sleep(1.0)
            if args.cprofile:
                ours.send_signal(signal.SIGUSR1)
                time.sleep(0.5)
            print(f"ours via {args.route} ({options or 'defaults'}):", json.dumps({**measure(procs, run, args.requests, idle), "ours idle ms/s": idle["ours"] * 1000}))
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait()
            if args.cprofile:
                ours.send_signal(signal.SIGUSR2)
                time.sleep(2.0)
            if args.keep:
                print(server.base_url, ours.pid, flush=True)
                input("Enter to stop")
            if args.pairs and children:
                print("pairs:", json.dumps(pairs(run, children[0], args.max_tokens, args.pairs)))
            if args.alone and children:
                argv = children[0].cmdline()
                url = "http://127.0.0.1:" + argv[argv.index("--port") + 1]
                direct = llama_client(url)
                alone = lambda p: stream_completion(direct, p, args.max_tokens)  # noqa: E731
                print("llama-server /completion (same process, no lollms in front):",
                      json.dumps(measure({"llama-server": children[0]}, alone, args.requests)))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
