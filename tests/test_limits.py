"""Fail closed on what a request may carry and on how many may wait (issue "Fail closed", items 2, 3, 4, 10).

Network-level limits (authentication before the body is read, body and header caps) run against a real
server process over raw sockets, so what is measured is what the HTTP layer does, not a client library.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from helpers import API_KEY, ServerProcess, api_client, sse_events, write_config

BODY_CAP = 1 << 20  # the server under test takes at most 1 MB per request


def ask(text: str = "hello there", **extra: Any) -> dict[str, Any]:
    return {"input_data": [{"type": "text", "role": "user_prompt", "data": text}], **extra}


def chat(content: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": "dummy", "messages": [{"role": "user", "content": content}], **extra}


def openai_error(r: httpx.Response) -> dict[str, Any]:
    body = r.json()
    assert set(body) == {"error"}, body
    return dict(body["error"])


# ---- a real server: authentication before the body, body and header caps ---------------------------
@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    d = tmp_path_factory.mktemp("limits") / "cfg"
    write_config(d, main={"server": {"max_body_bytes": BODY_CAP}})
    with ServerProcess(d) as srv:
        yield srv


def _head(sock: socket.socket, timeout: float = 5.0) -> str:
    """The status line and headers of the answer (waits at most ``timeout`` seconds for them)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    return data.decode("latin-1")


def _request_head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.e2e
@pytest.mark.parametrize("path,status", [("/api/v1/generate", 403), ("/v1/chat/completions", 401)])
def test_a_50mb_body_without_key_is_refused_while_it_is_still_being_sent(guarded: ServerProcess, path: str, status: int) -> None:
    for framing in ({"Content-Length": str(50 * 2**20)}, {"Transfer-Encoding": "chunked"}):
        with socket.create_connection(("127.0.0.1", guarded.port), timeout=10) as sock:
            sock.sendall(_request_head(path, framing))
            first = b'{"input_data": [' + b" " * 1000
            sock.sendall(first if "Content-Length" in framing else b"%x\r\n%s\r\n" % (len(first), first))
            head = _head(sock)  # 1 KB of the 50 MB sent: the answer must already be there
        assert head.startswith(f"HTTP/1.1 {status}"), (framing, head)


@pytest.mark.e2e
def test_a_declared_body_over_the_cap_is_413_before_it_is_sent(guarded: ServerProcess) -> None:
    for path, key in (("/api/v1/generate", {"X-API-Key": API_KEY}), ("/v1/chat/completions", {"Authorization": f"Bearer {API_KEY}"})):
        with socket.create_connection(("127.0.0.1", guarded.port), timeout=10) as sock:
            sock.sendall(_request_head(path, {**key, "Content-Length": str(BODY_CAP + 1)}))
            head = _head(sock)
        assert head.startswith("HTTP/1.1 413"), head


@pytest.mark.e2e
def test_a_chunked_body_over_the_cap_is_413(guarded: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", guarded.port), timeout=10) as sock:
        sock.sendall(_request_head("/api/v1/generate", {"X-API-Key": API_KEY, "Transfer-Encoding": "chunked"}))
        piece = b" " * 65536
        for _ in range(3 * BODY_CAP // len(piece)):  # no end chunk: the answer comes before the body ends
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        head = _head(sock)
    assert head.startswith("HTTP/1.1 413"), head


@pytest.mark.e2e
def test_body_cap_answers_in_each_surface_format(guarded: ServerProcess) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b" " * 65536

    api = httpx.post(f"{guarded.base_url}/api/v1/tokenize", content=chunks(), headers={"X-API-Key": API_KEY})
    oai = httpx.post(f"{guarded.base_url}/v1/chat/completions", content=chunks(), headers={"Authorization": f"Bearer {API_KEY}"})
    assert api.status_code == 413 and "server.max_body_bytes" in api.json()["detail"], api.text
    assert oai.status_code == 413 and "server.max_body_bytes" in openai_error(oai)["message"], oai.text
    ok = httpx.post(f"{guarded.base_url}/api/v1/generate", json=ask("still serving"), headers={"X-API-Key": API_KEY})
    assert ok.status_code == 200 and ok.json()["output"][0]["data"] == "still serving"


@pytest.mark.e2e
def test_oversized_headers_are_431(guarded: ServerProcess) -> None:
    r = httpx.get(f"{guarded.base_url}/api/v1/list_bindings", headers={"X-API-Key": API_KEY, "X-Big": "a" * 20000})
    assert r.status_code == 431, r.text
    assert httpx.get(f"{guarded.base_url}/api/v1/list_bindings", headers={"X-API-Key": API_KEY, "X-Big": "a" * 8000}).status_code == 200


# ---- in process: input caps -------------------------------------------------------------------------
@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    d = tmp_path / "cfg"
    write_config(
        d,
        {"dummy": ("dummy_binding", {"context_size": 512}), "vision": ("dummy_binding", {"default_model": "dummy-vision"})},
        main={"server": {"max_input_items": 8, "max_binary_input_bytes": 4096}},
    )
    return d


async def test_too_many_input_items_is_a_400(cfg: Path) -> None:
    many = [{"type": "text", "role": "user_prompt", "data": f"t{i}"} for i in range(9)]
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json={"input_data": many})
        o = await c.post("/v1/chat/completions", json={"model": "dummy", "messages": [{"role": "user", "content": "x"}] * 9})
        fits = await c.post("/api/v1/generate", json={"input_data": many[:8]})
    assert r.status_code == 400 and "9 items" in r.json()["detail"] and "server.max_input_items" in r.json()["detail"], r.text
    assert o.status_code == 400 and "server.max_input_items" in openai_error(o)["message"], o.text
    assert fits.status_code == 200, fits.text


async def test_base64_input_over_the_cap_is_a_400(cfg: Path) -> None:
    def image(n: int) -> dict[str, Any]:
        return {"type": "image", "role": "user_prompt", "mime_type": "image/png", "data": base64.b64encode(b"\x89PNG" + b"\0" * n).decode()}

    async with api_client(cfg) as c:
        big = await c.post("/api/v1/generate", json={**ask("look"), "binding_name": "vision",
                                                       "input_data": [ask("look")["input_data"][0], image(8000)]})
        small = await c.post("/api/v1/generate", json={**ask("look"), "binding_name": "vision",
                                                         "input_data": [ask("look")["input_data"][0], image(1000)]})
    assert big.status_code == 400 and "input_data[1]" in big.json()["detail"] and "max_binary_input_bytes" in big.json()["detail"], big.text
    assert small.status_code == 200, small.text


async def test_max_tokens_beyond_the_context_is_a_400_and_a_default_is_clamped(cfg: Path) -> None:
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=ask(parameters={"max_tokens": 100000}))
        o = await c.post("/v1/chat/completions", json=chat(max_tokens=100000))
        ok = await c.post("/api/v1/generate", json=ask(parameters={"max_tokens": 512}))
        default = await c.post("/api/v1/generate", json=ask())  # default_max_output_tokens 1024 > 512: clamped
    assert r.status_code == 400 and "max_tokens=100000" in r.json()["detail"] and "512" in r.json()["detail"], r.text
    assert o.status_code == 400 and "512" in openai_error(o)["message"], o.text
    assert ok.status_code == 200 and default.status_code == 200, default.text


# ---- lone surrogates -------------------------------------------------------------------------------
LONE = "\ud800"
SURROGATE_CASES: list[tuple[str, dict[str, Any]]] = [
    ("/api/v1/generate", {**ask(), "binding_name": LONE}),
    ("/api/v1/generate", {**ask(), "model_name": LONE}),
    ("/api/v1/generate", {**ask(), "personality": LONE}),
    ("/api/v1/generate", {**ask(), "generation_type": LONE}),
    ("/api/v1/generate", ask(f"prompt {LONE} here")),
    ("/api/v1/generate", ask(f"prompt {LONE} here", stream=True)),
    ("/api/v1/generate", {"input_data": [{"type": "text", "role": LONE, "data": "x"}]}),
    ("/api/v1/generate", {"text_prompt": LONE}),
    ("/api/v1/tokenize", {"text": LONE}),
    ("/api/v1/count_tokens", {"text": "x", "binding_name": LONE}),
    ("/api/v1/detokenize", {"tokens": [5], "model_name": LONE}),
    ("/v1/chat/completions", chat(LONE)),
    ("/v1/chat/completions", chat(LONE, stream=True)),
    ("/v1/chat/completions", {**chat(), "model": LONE}),
    ("/v1/chat/completions", {"model": "dummy", "messages": [{"role": LONE, "content": "x"}]}),
    ("/v1/completions", {"model": "dummy", "prompt": LONE}),
    ("/lollms/v1/tokenize", {"model": "dummy", "text": LONE}),
    ("/lollms/v1/tokenize", {"model": LONE, "text": "x"}),
]


@pytest.mark.parametrize("path,body", SURROGATE_CASES, ids=[f"{p}-{i}" for i, (p, _) in enumerate(SURROGATE_CASES)])
async def test_a_lone_surrogate_anywhere_is_a_400(cfg: Path, path: str, body: dict[str, Any]) -> None:
    raw = json.dumps(body)  # ensure_ascii: the surrogate travels as the escape \ud800, as a client would send it
    assert "\\ud800" in raw
    async with api_client(cfg) as c:
        r = await c.post(path, content=raw, headers={"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"})
    assert r.status_code == 400, r.text
    message = openai_error(r)["message"] if path.startswith(("/v1/", "/lollms/")) else r.json()["detail"]
    assert "surrogate" in message


async def test_a_valid_surrogate_pair_is_fine_and_streams_end_with_one_final(cfg: Path) -> None:
    raw = json.dumps(ask("smile \U0001F600", stream=True))
    assert "\\ud83d\\ude00" in raw
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", content=raw, headers={"Content-Type": "application/json"})
    events = sse_events(r.text)
    assert [e["type"] for e in events].count("final") == 1 and events[-1]["type"] == "final"
    assert events[-1]["content"][0]["data"] == "smile \U0001F600"


async def test_echoed_names_are_truncated(cfg: Path) -> None:
    long_name = "b" * 5000
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json={**ask(), "binding_name": long_name})
        o = await c.post("/v1/chat/completions", json={**chat(), "model": long_name})
        p = await c.post("/api/v1/generate", json={**ask(), "personality": long_name})
    for resp, text in ((r, r.json()["detail"]), (o, openai_error(o)["message"]), (p, p.json()["detail"])):
        assert resp.status_code in (400, 404), resp.text
        assert len(text) < 1000 and "5000 characters" in text, text[:300]


# ---- bounded queue ---------------------------------------------------------------------------------
def _queue_config(tmp_path: Path, *, max_queue: int, queue_timeout: int = 30, delay: float = 4.0) -> Path:
    d = tmp_path / "cfg"
    write_config(
        d, {"dummy": ("dummy_binding", {"requires_gpu": True, "delay": delay})},
        main={"resource_manager": {"gpu_strategy": "semaphore", "gpu_limit": 1, "queue_timeout": queue_timeout,
                                   "max_queue": max_queue}},
    )
    return d


async def _wait_until(c: httpx.AsyncClient, key: str, value: int, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state: dict[str, Any] = (await c.get("/api/v1/resources")).json()
        if state[key] == value or time.monotonic() > deadline:
            return state
        await asyncio.sleep(0.02)


async def test_full_queue_is_503_at_once_with_retry_after(tmp_path: Path) -> None:
    async with api_client(_queue_config(tmp_path, max_queue=1)) as c:
        running = asyncio.create_task(c.post("/api/v1/generate", json=ask("one")))
        assert (await _wait_until(c, "active", 1))["active"] == 1
        queued = asyncio.create_task(c.post("/api/v1/generate", json=ask("two")))
        state = await _wait_until(c, "waiting", 1)
        assert state["waiting"] == 1 and state["max_queue"] == 1, state
        started = time.monotonic()
        full = await c.post("/api/v1/generate", json=ask("three"))
        full_stream = await c.post("/api/v1/generate", json=ask("three", stream=True))
        full_openai = await c.post("/v1/chat/completions", json=chat("three"))
        elapsed = time.monotonic() - started
        assert (await running).status_code == 200 and (await queued).status_code == 200
    assert elapsed < 3.0, elapsed  # refused at once, not after waiting for the 4 s request
    for r in (full, full_stream, full_openai):
        assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0, r.text
    assert "resource_manager.max_queue" in full.json()["detail"]
    assert openai_error(full_openai)["code"] == "server_busy"


async def test_queue_timeout_is_408_with_retry_after(tmp_path: Path) -> None:
    async with api_client(_queue_config(tmp_path, max_queue=4, queue_timeout=1, delay=8.0)) as c:
        running = asyncio.create_task(c.post("/api/v1/generate", json=ask("one")))
        assert (await _wait_until(c, "active", 1))["active"] == 1
        late = await c.post("/api/v1/generate", json=ask("two"))
        late_openai = await c.post("/v1/chat/completions", json=chat("two"))
        assert (await running).status_code == 200
    for r in (late, late_openai):
        assert r.status_code == 408 and int(r.headers["Retry-After"]) > 0, r.text
    assert openai_error(late_openai)["code"] == "queue_timeout"


# ---- dummy_binding's history stays bounded ---------------------------------------------------------
async def test_dummy_history_is_bounded(cfg: Path) -> None:
    async with api_client(cfg) as c:
        for i in range(50):
            assert (await c.post("/api/v1/generate", json=ask(f"n{i}"))).status_code == 200
        transport: Any = c._transport  # the in-process app, to look at the binding instance
        history = transport.app.state.services.bindings.get("dummy").history
    assert 0 < len(history) <= 32 and history[-1].prompt == "n49"


async def test_public_routes_answer_without_a_key_and_the_others_do_not(cfg: Path) -> None:
    async with api_client(cfg, api_key=None) as c:
        for path in ("/health", "/api/v1/health", "/api/v1/health/ready", "/api/v1/server_info"):
            assert (await c.get(path)).status_code == 200, path
        assert (await c.get("/api/v1/list_bindings")).status_code == 403
        assert (await c.get("/v1/models")).status_code == 401


@pytest.mark.e2e
def test_a_head_that_keeps_coming_is_cut_at_the_cap_with_431(guarded: ServerProcess) -> None:
    """The HTTP layer stops buffering a request head past server.max_header_bytes (16 KB by default)."""
    with socket.create_connection(("127.0.0.1", guarded.port), timeout=10) as sock:
        sock.sendall(b"GET /api/v1/list_bindings HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for _ in range(40):  # 40 KB of headers, never ending the head
            try:
                sock.sendall(b"X-Filler: " + b"f" * 1000 + b"\r\n")
            except OSError:
                break
        head = _head(sock)
    assert head.startswith("HTTP/1.1 431"), head


@pytest.mark.e2e
def test_a_websocket_upgrade_is_answered_as_plain_http(guarded: ServerProcess) -> None:
    """No route is a WebSocket: an upgrade request gets the route's plain answer, the key is still checked,
    and the server's log does not take two warnings per such request."""
    upgrade = "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    answers = {}
    for path in ("/health", "/api/v1/list_bindings"):
        with socket.create_connection(("127.0.0.1", guarded.port), timeout=10) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{upgrade}\r\n".encode())
            answers[path] = _head(sock).split("\r\n", 1)[0]
    assert answers == {"/health": "HTTP/1.1 200 OK", "/api/v1/list_bindings": "HTTP/1.1 403 Forbidden"}
    assert "Unsupported upgrade request" not in guarded.log()
