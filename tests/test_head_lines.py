"""Per-response headers through a real server process, where they travel as ready head lines (api/head_lines.py).

The in-process client (no such extension) checks the same headers in test_webui_serving and test_lean_route; here
the real uvicorn protocol adds them to the head itself: each must come exactly once, next to the route's own.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from helpers import API_KEY, ServerProcess, write_config

SECURITY = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY"}
PER_RESPONSE = ("x-request-id", "x-process-time", "server-timing")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    cfg = tmp_path_factory.mktemp("head-lines") / "cfg"
    write_config(cfg, {"dummy": ("dummy_binding", {"delay": 0.0})})
    with ServerProcess(cfg) as srv:
        yield srv


def _once(r: httpx.Response, name: str) -> str:
    values = r.headers.get_list(name)
    assert len(values) == 1, (name, values, r.request.url)
    return values[0]


def _check(r: httpx.Response) -> None:
    for name, value in SECURITY.items():
        assert _once(r, name) == value
    assert "frame-ancestors 'none'" in _once(r, "content-security-policy")
    for name in PER_RESPONSE:
        _once(r, name)
    assert _once(r, "server") == "uvicorn" and _once(r, "date").endswith(" GMT")  # uvicorn's own, as lines too
    assert float(r.headers["x-process-time"]) >= 0 and r.headers["server-timing"].startswith("app;dur=")


def test_plain_stream_error_and_public_answers_carry_each_header_once(server: ServerProcess) -> None:
    body = {"input_data": [{"type": "text", "role": "user_prompt", "data": "hello"}]}
    with httpx.Client(base_url=server.base_url, headers={"X-API-Key": API_KEY}) as c:
        plain = c.post("/api/v1/generate", json=body, headers={"X-Request-ID": "trace-42"})
        assert plain.status_code == 200 and plain.json()["output"][0]["data"] == "hello"
        _check(plain)
        assert plain.headers["x-request-id"] == "trace-42" == plain.json()["request_id"]
        assert plain.headers["content-length"] == str(len(plain.content))
        with c.stream("POST", "/api/v1/generate", json={**body, "stream": True}) as stream:
            events = [line for line in stream.iter_lines() if line.startswith("data:")]
        _check(stream)
        assert '"final"' in events[-1]
        for r in (c.get("/health"), c.get("/no/such/path"), c.post("/api/v1/generate", json={"input_data": "x"}),
                  httpx.post(f"{server.base_url}/api/v1/generate", json=body)):  # 200, 404, 422 and 403 (no key)
            _check(r)


def test_a_page_with_its_own_policy_keeps_it(server: ServerProcess) -> None:
    docs = httpx.get(f"{server.base_url}/docs")
    assert docs.status_code == 200
    policy = _once(docs, "content-security-policy")
    assert "script-src" in policy and "default-src 'none'" not in policy  # the page's own, not the API default
    for name, value in SECURITY.items():
        assert _once(docs, name) == value


def test_cors_vary_is_one_header(server: ServerProcess) -> None:
    plain = httpx.get(f"{server.base_url}/health")
    assert _once(plain, "vary") == "Origin"
    browser = httpx.get(f"{server.base_url}/health", headers={"Origin": "http://localhost:9601"})
    assert "Origin" in _once(browser, "vary")


def test_the_head_is_well_formed_on_the_wire(server: ServerProcess) -> None:
    """Byte level: one blank line ends the head, every line is `name: value`, and keep-alive still works."""
    raw = b'{"input_data":[{"type":"text","role":"user_prompt","data":"hi"}]}'
    request = (b"POST /api/v1/generate HTTP/1.1\r\nhost: x\r\nx-api-key: " + API_KEY.encode()
               + b"\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(raw) + raw)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        for _ in range(2):  # two answers on one connection
            s.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data:
                data += s.recv(65536)
            head, _, rest = data.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            assert lines[0] == b"HTTP/1.1 200 OK"
            assert all(b": " in line and not line.startswith(b" ") for line in lines[1:]), lines
            length = int(next(line.split(b": ", 1)[1] for line in lines if line.lower().startswith(b"content-length:")))
            while len(rest) < length:
                rest += s.recv(65536)
            assert rest.startswith(b'{"personality"') and len(rest) == length
