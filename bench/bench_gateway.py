"""The gateway's cost: CPU per request of lollms-server in front of a zero-cost upstream, as ratios.

    python bench/bench_gateway.py                       # 400 requests per case, concurrency 8, 3 rounds
    python bench/bench_gateway.py --requests 1000 --concurrency 1 --rounds 5
    python bench/bench_gateway.py --profile prof.txt    # same load, py-spy samples the server (collapsed stacks)
    python bench/bench_gateway.py --alternate --rounds 8  # chat / generate only, request by request (see below)

Processes, all on 127.0.0.1:
- ``upstream``: a bare Starlette app served by uvicorn that answers OpenAI chat completions at once (JSON or
  SSE) and ``/api/v1/generate`` with a fixed body — the "bare Starlette" baseline;
- ``ours``: a real lollms-server with a ``dummy_binding`` instance (delay 0) and an ``openai_binding``
  instance pointed at the upstream.
Cases: bare (client -> upstream), ours + dummy (generate, chat) and ours -> openai_binding -> upstream
(generate, chat), each plain and streamed. The machine may be shared: the cases run interleaved, round after
round, and what matters is the ratios of the median CPU per request (process CPU time / requests) of each
case, not the absolute figures.

``--alternate`` measures only the ratio chat / generate (each through openai_binding and through the dummy
binding), robustly: at concurrency 1 the two routes take turns request by request (g c c g g c ...), the server's
CPU time read before each request and again a moment after its answer (so its work after the answer is counted
too); a round is ``--requests`` pairs and its ratio is the sum of chat's CPU over the sum of generate's. A slow
phase of a shared machine hits both routes alike, where whole blocks of one case run seconds apart.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from helpers import API_KEY, ServerProcess, free_port, write_config  # noqa: E402
from loadgen import LoadResult, closed_loop  # noqa: E402
from proc_cpu import cpu_precise  # noqa: E402

PROMPT = "hello gateway benchmark"


def upstream_app() -> Any:
    """The zero-cost OpenAI-compatible upstream (and bare Starlette baseline)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    def completion(model: str) -> dict[str, Any]:
        return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello there"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}

    def sse(model: str) -> list[bytes]:
        base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model}
        pieces = [{"role": "assistant", "content": ""}, {"content": "hello"}, {"content": " there"}]
        out = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in pieces]
        out.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}})
        return [f"data: {json.dumps(o)}\n\n".encode() for o in out] + [b"data: [DONE]\n\n"]

    async def chat(request: Request) -> Response:
        body = await request.json()
        model = str(body.get("model") or "up")
        if body.get("stream"):
            async def gen() -> Any:
                for piece in sse(model):
                    yield piece
            return StreamingResponse(gen(), media_type="text/event-stream")
        return JSONResponse(completion(model))

    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "up", "object": "model", "created": 1, "owned_by": "bench"}]})

    async def generate(request: Request) -> Response:
        body = await request.json()
        if body.get("stream"):
            async def gen() -> Any:
                for piece in (b'data: {"type":"chunk","data":"hello"}\n\n', b'data: {"type":"chunk","data":" there"}\n\n',
                              b'data: {"type":"final","content":[{"type":"text","data":"hello there"}]}\n\n'):
                    yield piece
            return StreamingResponse(gen(), media_type="text/event-stream")
        return JSONResponse({"personality": None, "request_id": "r1", "output": [{"type": "text", "data": "hello there"}]})

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]), Route("/v1/models", models),
                             Route("/api/v1/generate", generate, methods=["POST"])])


class Upstream:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> "Upstream":
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve-upstream", str(self.port)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/v1/models", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise TimeoutError("upstream did not start")

    def __exit__(self, *exc: object) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)


@dataclass
class Case:
    name: str
    base: str  # "bare" or "ours"
    path: str
    body: dict[str, Any]
    stream: bool


def cases(stream: bool) -> list[Case]:
    chat = {"messages": [{"role": "user", "content": PROMPT}], "stream": stream}
    gen = {"input_data": [{"type": "text", "role": "user_prompt", "data": PROMPT}], "stream": stream}
    s = " stream" if stream else ""
    return [
        Case(f"bare starlette chat{s}", "bare", "/v1/chat/completions", {**chat, "model": "up"}, stream),
        Case(f"bare starlette generate{s}", "bare", "/api/v1/generate", gen, stream),
        Case(f"ours+dummy generate{s}", "ours", "/api/v1/generate", {**gen, "binding_name": "dummy"}, stream),
        Case(f"ours+dummy chat{s}", "ours", "/v1/chat/completions", {**chat, "model": "dummy"}, stream),
        Case(f"ours->openai generate{s}", "ours", "/api/v1/generate", {**gen, "binding_name": "gw", "model_name": "up"}, stream),
        Case(f"ours->openai chat{s}", "ours", "/v1/chat/completions", {**chat, "model": "gw/up"}, stream),
    ]


async def load(url: str, case: Case, total: int, concurrency: int,
               warmed: Callable[[], None] | None = None) -> LoadResult:
    """``total`` requests over ``concurrency`` keep-alive connections. The load generator is aiohttp: it shares
    the machine's cores with the servers, and costs about a third of httpx's CPU per request, so it disturbs
    the servers less (and the same for every peer). ``warmed`` is called after the warm-up requests (a
    server's one-time work, such as importing a surface on its first request, is not measured)."""
    import aiohttp

    headers = {"X-API-Key": API_KEY, "Authorization": f"Bearer {API_KEY}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url=url, headers=headers, connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=30)) as client:
        for _ in range(10):
            async with client.post(case.path, json=case.body) as r:
                await r.read()
        if warmed is not None:
            warmed()

        async def send() -> bool:
            async with client.post(case.path, json=case.body) as r:
                body = await r.read()
            return r.status == 200 and b"hello" in body

        return await closed_loop(send, total, concurrency)


async def alternate(url: str, pid: int, gen: Case, chat: Case, pairs: int) -> tuple[float, float]:
    """(generate's, chat's) server CPU seconds over ``pairs`` requests of each, taking turns (see the module doc)."""
    import aiohttp

    headers = {"X-API-Key": API_KEY, "Authorization": f"Bearer {API_KEY}"}
    spent = {gen.name: 0.0, chat.name: 0.0}
    async with aiohttp.ClientSession(base_url=url, headers=headers, connector=aiohttp.TCPConnector(limit=1),
                                     timeout=aiohttp.ClientTimeout(total=30)) as client:
        async def one(case: Case) -> None:
            c0 = cpu_precise(pid)
            async with client.post(case.path, json=case.body) as r:
                body = await r.read()
            if r.status != 200 or b"hello" not in body:
                raise SystemExit(f"{case.name}: HTTP {r.status} {body[:200]!r}")
            await asyncio.sleep(ALTERNATE_SETTLE_S)  # the server's work after the answer belongs to this request
            spent[case.name] += cpu_precise(pid) - c0

        for case in (gen, chat) * 10:  # warm-up
            await one(case)
        spent[gen.name] = spent[chat.name] = 0.0
        for i in range(pairs):
            for case in ((gen, chat) if i % 2 == 0 else (chat, gen)):
                await one(case)
    return spent[gen.name], spent[chat.name]


ALTERNATE_SETTLE_S = 0.001


def alternate_main(args: argparse.Namespace, srv: ServerProcess) -> None:
    assert srv.proc is not None
    by_name = {c.name: c for c in cases(False) + cases(True)}
    print(f"chat / generate, server CPU per request; requests alternating one by one at concurrency 1, "
          f"{args.requests} pairs per round, {args.rounds} rounds")
    for binding in ("ours->openai", "ours+dummy"):
        for s in ("", " stream"):
            gen, chat = by_name[f"{binding} generate{s}"], by_name[f"{binding} chat{s}"]
            ratios, per_gen, per_chat = [], [], []
            for _ in range(args.rounds):
                g, c = asyncio.run(alternate(srv.base_url, srv.proc.pid, gen, chat, args.requests))
                ratios.append(c / g)
                per_gen.append(g / args.requests * 1000)
                per_chat.append(c / args.requests * 1000)
            print(f"  {binding + s:<22} generate {statistics.median(per_gen):.3f} ms, chat {statistics.median(per_chat):.3f} ms, "
                  f"ratio median {statistics.median(ratios):.3f} (rounds {min(ratios):.3f}-{max(ratios):.3f})", flush=True)


def py_spy() -> str:
    """The py-spy executable: on PATH, else beside this Python (a venv that is not activated)."""
    beside = Path(sys.executable).parent / "py-spy"
    return shutil.which("py-spy") or str(beside)


def cpu(p: psutil.Process) -> float:
    return cpu_precise(p.pid)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=400, help="requests per case and round")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default="", help="comma-separated substrings: run only the matching cases")
    ap.add_argument("--profile", default="", help="sample the server with py-spy (dev extra) into this file, collapsed-stack format")
    ap.add_argument("--asyncio-twin", action="store_true",
                    help="also run a second server on the stdlib asyncio loop (uvloop hidden) to compare the two loops")
    ap.add_argument("--alternate", action="store_true", help="only chat / generate, the requests of both taking turns one by one")
    ap.add_argument("--serve-upstream", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_upstream:
        import uvicorn
        uvicorn.run(upstream_app(), host="127.0.0.1", port=args.serve_upstream, log_level="warning", access_log=False)
        return
    all_cases = cases(False) + cases(True)
    if args.only:
        keys = args.only.split(",")
        all_cases = [c for c in all_cases if any(k in c.name for k in keys)]
    with tempfile.TemporaryDirectory(prefix="lollms-gateway-") as tmp, Upstream() as up:
        cfg = Path(tmp) / "cfg"
        write_config(cfg, {"dummy": ("dummy_binding", {"delay": 0.0}),
                           "gw": ("openai_binding", {"base_url": f"{up.url}/v1", "api_key": "sk-bench-0000000",
                                                     "api_key_env": None, "default_model": "up"})},
                     main={"logging": {"log_level": "WARNING", "level": 30}})
        hide = Path(tmp) / "no_uvloop"
        hide.mkdir()
        (hide / "uvloop.py").write_text("raise ImportError('hidden by bench_gateway --asyncio-twin')\n")
        twin_env = {"PYTHONPATH": os.pathsep.join([str(hide), os.environ.get("PYTHONPATH", "")])}
        with ServerProcess(cfg) as srv, contextlib.ExitStack() as stack:
            assert srv.proc is not None
            if args.alternate:
                alternate_main(args, srv)
                return
            twin = stack.enter_context(ServerProcess(cfg, env=twin_env)) if args.asyncio_twin else None
            spy = subprocess.Popen([py_spy(), "record", "-p", str(srv.proc.pid), "-o", args.profile, "-f", "raw", "-r", "250", "--gil"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) if args.profile else None
            procs = {"bare": psutil.Process(up.proc.pid if up.proc else 0), "ours": psutil.Process(srv.proc.pid)}
            urls = {"bare": up.url, "ours": srv.base_url}
            if twin is not None and twin.proc is not None:
                procs["twin"], urls["twin"] = psutil.Process(twin.proc.pid), twin.base_url
                all_cases += [Case(c.name.replace("ours", "asyncio-loop ours"), "twin", c.path, c.body, c.stream)
                              for c in all_cases if c.base == "ours"]
            per: dict[str, list[float]] = {c.name: [] for c in all_cases}
            rps: dict[str, list[float]] = {c.name: [] for c in all_cases}
            p50: dict[str, list[float]] = {c.name: [] for c in all_cases}
            for _ in range(args.rounds):
                for case in all_cases:
                    p = procs[case.base]
                    c0 = [0.0]

                    def warmed(p: psutil.Process = p, c0: list[float] = c0) -> None:
                        c0[0] = cpu(p)  # from the end of the warm-up

                    elapsed, lat, errors = asyncio.run(load(urls[case.base], case, args.requests, args.concurrency, warmed))
                    if errors:
                        raise SystemExit(f"{case.name}: {errors} failed requests")
                    per[case.name].append((cpu(p) - c0[0]) / len(lat) * 1000)
                    rps[case.name].append(len(lat) / elapsed)
                    p50[case.name].append(statistics.median(lat) * 1000)
            if spy is not None:
                spy.send_signal(2)
                spy.wait(30)
        if args.profile:
            print(f"profile written to {args.profile}")
    med = {k: statistics.median(v) for k, v in per.items()}
    print(f"{args.requests} requests per case x {args.rounds} interleaved rounds, concurrency {args.concurrency}; "
          "CPU = the serving process's CPU time / requests (median of rounds)")
    head = f"{'case':<30}{'CPU ms/req':>12}{'req/s':>9}{'p50 ms':>9}"
    print(head)
    print("-" * len(head))
    for name in per:
        print(f"{name:<30}{med[name]:>12.2f}{statistics.median(rps[name]):>9.0f}{statistics.median(p50[name]):>9.2f}")
    print("ratios (CPU per request):")
    for s in ("", " stream"):
        def r(a: str, b: str, s: str = s) -> None:
            if a + s in med and b + s in med:  # 0 CPU: too few requests for the 10 ms ticks of cpu_times
                ratio = f"{med[a + s] / med[b + s]:.2f}" if med[b + s] else "n/a (no CPU time counted; send more requests)"
                print(f"  {a + s} / {b + s}: {ratio}")
        r("ours+dummy generate", "bare starlette generate")
        r("ours+dummy chat", "ours+dummy generate")
        r("ours->openai chat", "ours->openai generate")
        r("ours->openai chat", "bare starlette chat")
        r("ours+dummy generate", "asyncio-loop ours+dummy generate")
        r("ours->openai chat", "asyncio-loop ours->openai chat")


if __name__ == "__main__":
    os.environ.setdefault("CONFIGMASTER_LOG_LEVEL", "WARNING")
    main()
