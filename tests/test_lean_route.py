"""The lean request path (lean_route, hot_lane, the coalescing transport) answers exactly what FastAPI's does.

Each request is sent twice to the same app: through the lean path, then with it switched off (FastAPI's
own router and handler); status, headers and body must agree (ids, timings and timestamps aside).
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
from helpers import API_KEY, api_client, write_config

from lollms_server.api.h11_protocol import CoalescingTransport
from lollms_server.api.hot_lane import HotLane, build_index
from lollms_server.api.lazy_routes import LazyRouters
from lollms_server.api.lean_route import LeanRoute
from lollms_server.app import create_app

VARYING = re.compile(r'("(?:request_id|id|created|execution_time|duration|x-request-id|x-process-time|server-timing)":\s*)'
                     r'("[^"]*"|[0-9.e-]+)')
GEN = "/api/v1/generate"
CHAT = "/v1/chat/completions"


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    d = tmp_path / "cfg"
    write_config(d, {"dummy": ("dummy_binding", {})}, defaults={"ttt_binding": "dummy"})
    return d


@pytest.fixture
def lean_switch() -> Iterator[None]:
    yield
    LeanRoute.fast_path_enabled = True


def _stable(text: str) -> str:
    return VARYING.sub(r"\1<varies>", text)


def _text(data: str) -> dict[str, Any]:
    return {"type": "text", "role": "user_prompt", "data": data}


REQUESTS: list[tuple[str, str, dict[str, str], bytes | None]] = [
    ("POST", GEN, {}, json.dumps({"input_data": [_text("hello lean")], "parameters": {"temperature": 0.5}}).encode()),
    ("POST", GEN, {}, json.dumps({"input_data": [_text("hello lean")], "stream": True}).encode()),
    ("POST", GEN, {}, json.dumps({"input_data": 3}).encode()),  # invalid: FastAPI's 422
    ("POST", GEN, {}, b'{"input_data": [ '),  # not JSON
    ("POST", GEN, {}, b""),  # no body
    ("POST", GEN, {"content-type": "text/plain"}, json.dumps({"input_data": [_text("x")]}).encode()),
    ("POST", GEN, {}, b'{"input_data": [{"type": "text", "role": "user_prompt", "data": "\\ud800"}]}'),  # lone surrogate
    ("POST", GEN, {}, json.dumps({"input_data": [_text("x")], "binding_name": "nope"}).encode()),  # 404 from the core
    ("POST", GEN, {}, json.dumps({"input_data": [_text("x")], "parameters": {"temperature": -1}}).encode()),  # 400
    ("POST", CHAT, {}, json.dumps({"model": "dummy", "messages": [{"role": "user", "content": "hi"}]}).encode()),
    ("POST", CHAT, {}, json.dumps({"model": "dummy", "stream": True, "messages": [{"role": "user", "content": "hi"}]}).encode()),
    ("POST", CHAT, {}, json.dumps({"model": "dummy"}).encode()),  # OpenAI-shaped 400
    ("POST", CHAT, {}, json.dumps({"model": "nope", "messages": [{"role": "user", "content": "hi"}]}).encode()),  # 404
    ("POST", CHAT, {}, b"[1, 2"),
    ("GET", "/v1/models", {}, None),
    ("GET", "/api/v1/list_bindings", {}, None),
    ("GET", "/health", {}, None),
]


async def _answers(cfg: Path) -> list[tuple[int, dict[str, str], str]]:
    out = []
    async with api_client(cfg) as c:
        for method, path, headers, body in REQUESTS:
            h = {"content-type": "application/json", **headers} if body is not None else headers
            r = await c.request(method, path, content=body, headers=h)
            kept = {k: v for k, v in r.headers.items() if k not in ("x-request-id", "x-process-time", "server-timing",
                                                                       "content-length")}
            out.append((r.status_code, kept, _stable(r.text)))
    return out


async def test_lean_path_answers_like_fastapi(cfg: Path, lean_switch: None) -> None:
    lean = await _answers(cfg)
    LeanRoute.fast_path_enabled = False
    fastapi = await _answers(cfg)
    for (method, path, _, body), a, b in zip(REQUESTS, lean, fastapi):
        assert a == b, f"{method} {path} {body!r}"
    statuses = [status for status, _, _ in lean]
    assert statuses == [200, 200, 422, 422, 422, 422, 400, 404, 400, 200, 200, 400, 404, 400, 200, 200, 200]


async def test_auth_is_kept_on_the_hot_lane(cfg: Path) -> None:
    async with api_client(cfg, api_key=None) as c:
        body = {"input_data": [_text("x")]}
        assert (await c.post(GEN, json=body)).status_code == 403
        assert (await c.post(GEN, json=body, headers={"X-API-Key": "wrong"})).status_code == 401
        assert (await c.post(GEN, json=body, headers={"X-API-Key": API_KEY})).status_code == 200
        chat = {"model": "dummy", "messages": [{"role": "user", "content": "hi"}]}
        r = await c.post(CHAT, json=chat)
        assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"
        assert (await c.post(CHAT, json=chat, headers={"Authorization": f"Bearer {API_KEY}"})).status_code == 200


def test_hot_lane_takes_the_generation_routes_and_only_unshadowed_exact_paths(cfg: Path) -> None:
    app = create_app(cfg)
    assert ("POST", GEN) in build_index(app) and ("POST", CHAT) not in build_index(app)  # not imported yet
    lazy = next(r for r in app.router.routes if isinstance(r, LazyRouters) and "/v1" in r.prefixes)
    lazy.materialise()  # the OpenAI surface's first request: its routes get lanes, other lazy routers unloaded
    assert any(isinstance(r, LazyRouters) for r in app.router.routes[:app.router.routes.index(lazy.included[0])])
    assert ("POST", CHAT) in build_index(app)
    app.openapi()  # imports every lazy router
    index = build_index(app)
    assert ("POST", GEN) in index and ("POST", CHAT) in index
    assert all("{" not in path for _, path in index)
    # a route added before the generation routes that can match their path shadows them: no lane for it
    @app.post("/api/v1/{anything}")
    async def catch_all(anything: str) -> dict[str, str]:
        return {"caught": anything}

    app.router.routes.insert(0, app.router.routes.pop())
    assert ("POST", GEN) not in build_index(app)


async def test_health_probes_go_straight_to_fastapi_and_leave_the_index_to_the_first_other_request(cfg: Path) -> None:
    """The index builds every included route: a load balancer's probes answer without it (same answers)."""
    app = create_app(cfg)
    async with app.router.lifespan_context(app):
        import httpx

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                     headers={"X-API-Key": API_KEY}) as c:
            for path in ("/health", "/health/ready", "/api/v1/health", "/api/v1/health/ready"):
                assert (await c.get(path)).status_code == 200, path
            lane: Any = app.middleware_stack
            while not isinstance(lane, HotLane):
                lane = lane.app
            assert lane._built_for == -1
            assert (await c.post(GEN, json={"input_data": [_text("x")]})).status_code == 200
            assert ("POST", GEN) in lane._index


async def test_coalescing_transport_sends_one_turns_writes_at_once() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.writes: list[bytes] = []
            self.closed = False

        def write(self, data: bytes) -> None:
            self.writes.append(data)

        def close(self) -> None:
            self.closed = True

        def is_closing(self) -> bool:
            return self.closed

    real = Recorder()
    t = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(b"HTTP/1.1 200 OK\r\n\r\n")
    t.write(b"")
    t.write(b"body")
    assert real.writes == []
    await asyncio.sleep(0)
    assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    big = b"x" * (CoalescingTransport.JOIN_LIMIT + 1)
    t.write(b"head")
    t.write(big)  # past the limit: written now, so the real transport's flow control sees it
    assert real.writes[1:] == [b"head", big]
    t.write(b"last")
    t.close()  # flushes first
    assert real.writes[-1] == b"last" and real.closed and t.is_closing()
