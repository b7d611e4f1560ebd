"""Overhead of the OpenAI-compatible routes against /api/v1/generate, on the dummy binding (prints figures).

Run: venv/bin/python bench/bench_openai_compat.py [requests]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers import API_KEY, ServerProcess, write_config  # noqa: E402


def _median_ms(client: httpx.Client, path: str, body: dict, n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        r = client.post(path, json=body)
        times.append(time.perf_counter() - start)
        r.raise_for_status()
    return statistics.median(times) * 1000


def main(n: int = 200) -> None:
    cfg = Path(tempfile.mkdtemp()) / "cfg"
    write_config(cfg, {"dummy": ("dummy_binding", {})})
    text = "the quick brown fox jumps over the lazy dog"
    with ServerProcess(cfg) as srv, httpx.Client(base_url=srv.base_url, timeout=30,
                                                 headers={"Authorization": f"Bearer {API_KEY}", "X-API-Key": API_KEY}) as c:
        cases = {
            "/api/v1/generate": ("/api/v1/generate", {"input_data": [{"type": "text", "role": "user_prompt", "data": text}]}),
            "/v1/chat/completions": ("/v1/chat/completions", {"model": "dummy", "messages": [{"role": "user", "content": text}]}),
            "/v1/chat/completions stream": ("/v1/chat/completions", {"model": "dummy", "stream": True,
                                                                    "messages": [{"role": "user", "content": text}]}),
            "/v1/completions": ("/v1/completions", {"model": "dummy", "prompt": text}),
        }
        for name, (path, body) in cases.items():
            _median_ms(c, path, body, 10)  # warm up
            print(f"{name:32s} median {_median_ms(c, path, body, n):6.2f} ms over {n} requests")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
