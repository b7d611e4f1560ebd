"""Plain answers framed by api/plain_send.py give the bytes, errors and h11 states h11 itself gives.

Each case runs the server's protocol (uvicorn's h11 cycle with ours on top) over a recording transport twice:
once as served, once with the plain framing switched off (every answer through h11's events), and compares
everything the client and the connection see: the bytes written, whether the connection was closed, and h11's
states after the exchange (then a second request on the same connection, for keep-alive).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from lollms_server.api import h11_protocol
from lollms_server.api.h11_protocol import BoundedHeadH11Protocol

DATE = [(b"date", b"Sat, 01 Jan 2000 00:00:00 GMT"), (b"server", b"uvicorn")]
GET = b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n"


class Recorder(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 1), "peername": ("127.0.0.1", 2)}.get(name, default)

    def write(self, data: Any) -> None:
        self.data += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def app_sending(*messages: dict[str, Any]) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        for message in messages:
            await send(message)

    return app


def start(status: int = 200, headers: list[tuple[bytes, bytes]] | None = None, lines: bytes = b"") -> dict[str, Any]:
    message: dict[str, Any] = {"type": "http.response.start", "status": status,
                               "headers": headers if headers is not None else [(b"content-length", b"2"), (b"content-type", b"application/json")]}
    if lines:
        message["lollms.head_lines"] = lines
    return message


def body(data: bytes = b"{}", more: bool = False) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}


def exchange(app: Any, requests: list[bytes], plain: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, bool, Any, int]:
    taken = []
    real = h11_protocol.plain_start

    def spy(*args: Any) -> Any:
        result = real(*args) if plain else None
        taken.append(result is not None)
        return result

    monkeypatch.setattr(h11_protocol, "plain_start", spy)

    async def run() -> tuple[bytes, bool, Any, int]:
        config = Config(app, http=BoundedHeadH11Protocol, ws="none", lifespan="off", log_level="critical", proxy_headers=False,
                        access_log=False)
        config.load()
        state = ServerState()
        state.default_headers = list(DATE)
        proto = BoundedHeadH11Protocol(config, state, {}, asyncio.get_running_loop())
        transport = Recorder()
        proto.connection_made(transport)
        for raw in requests:
            proto.data_received(raw)
            for _ in range(20):
                await asyncio.sleep(0)
        states = (proto.conn.our_state, proto.conn.their_state)
        proto.connection_lost(None)
        return bytes(transport.data), transport.closed, states, sum(taken)

    result = asyncio.run(run())
    monkeypatch.undo()
    return result


CASES: dict[str, tuple[Any, list[bytes], bool]] = {
    # name: (app, requests, whether the plain framing takes it)
    "json 200, twice on one connection": (app_sending(start(), body()), [GET, GET], True),
    "head lines": (app_sending(start(lines=b"x-a: 1\r\nx-b: 2\r\n"), body()), [GET], True),
    "status without a phrase": (app_sending(start(499), body()), [GET], True),
    "body in parts": (app_sending(start(headers=[(b"content-length", b"5")]), body(b"ab", True), body(b"cde")), [GET], True),
    "empty body": (app_sending(start(headers=[(b"content-length", b"0")]), body(b"")), [GET], True),
    "too much data": (app_sending(start(), body(b"{}!")), [GET], True),
    "too little data": (app_sending(start(), body(b"{")), [GET], True),
    "too little data in parts": (app_sending(start(), body(b"{", True), body(b"")), [GET], True),
    "a header h11 refuses": (app_sending(start(headers=[(b"content-length", b"2"), (b"x-bad", b"a\x00b")]), body()), [GET], False),
    "a name h11 refuses": (app_sending(start(headers=[(b"content-length", b"2"), (b"bad name", b"v")]), body()), [GET], False),
    "stream (chunked)": (app_sending(start(headers=[(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
                                          lines=b"x-a: 1\r\n"), body(b"data: 1\n\n", True), body(b"", True),
                                    body(bytearray(b"data: 2\n\n"), True), body(b"")), [GET, GET], True),
    "stream ending with data": (app_sending(start(headers=[]), body(b"a", True), body(b"bc")), [GET], True),
    "stream, HTTP/1.0": (app_sending(start(headers=[]), body(b"a", True), body(b"bc")), [b"GET /x HTTP/1.0\r\n\r\n"], False),
    "stream that says chunked": (app_sending(start(headers=[(b"transfer-encoding", b"chunked")]), body(b"a", True), body(b"")),
                                 [GET], False),
    "header items as lists": (app_sending(start(headers=[[b"content-length", b"2"]]), body()), [GET], False),  # type: ignore[list-item]
    "str headers": (app_sending(start(headers=[("content-length", "2")]), body()), [GET], False),  # type: ignore[list-item]
    "two content-lengths": (app_sending(start(headers=[(b"content-length", b"2"), (b"content-length", b"2")]), body()), [GET], False),
    "no content-length": (app_sending(start(headers=[(b"content-type", b"text/plain")]), body(b"abc")), [GET], True),
    "connection: close": (app_sending(start(headers=[(b"content-length", b"2"), (b"connection", b"close")]), body()), [GET], False),
    "connection: Keep-Alive, Close": (app_sending(start(headers=[(b"content-length", b"2"), (b"connection", b"Keep-Alive, Close")]),
                                                  body()), [GET], False),
    "connection: keep-alive": (app_sending(start(headers=[(b"connection", b"keep-alive"), (b"content-length", b"2")]), body()),
                               [GET, GET], True),
    "204": (app_sending(start(204, headers=[]), body(b"")), [GET], False),
    "HEAD": (app_sending(start(), body()), [b"HEAD /x HTTP/1.1\r\nHost: t\r\n\r\n"], False),
    "client asks to close": (app_sending(start(), body()), [b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"], False),
    "HTTP/1.0": (app_sending(start(), body()), [b"GET /x HTTP/1.0\r\n\r\n"], False),
    "pipelined": (app_sending(start(), body()), [GET + GET], True),
}


@pytest.mark.parametrize("name", list(CASES))
def test_same_bytes_states_and_errors_as_h11(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app, requests, framed_here = CASES[name]
    ours = exchange(app, requests, True, monkeypatch)
    h11s = exchange(app, requests, False, monkeypatch)
    assert ours[:3] == h11s[:3], name
    assert (ours[3] > 0) is framed_here, name
    if framed_here:
        assert ours[0].startswith(b"HTTP/1.1 ")


def test_keep_alive_closes_an_idle_connection_after_its_timeout_from_the_last_answer() -> None:
    """One timer per connection (h11_protocol): an answer restarts the idle time, an idle connection is closed."""

    async def run() -> tuple[bool, bool, bool]:
        config = Config(app_sending(start(), body()), http=BoundedHeadH11Protocol, ws="none", lifespan="off",
                        log_level="critical", proxy_headers=False, access_log=False, timeout_keep_alive=0.5)
        config.load()
        state = ServerState()
        state.default_headers = list(DATE)
        proto = BoundedHeadH11Protocol(config, state, {}, asyncio.get_running_loop())
        transport = Recorder()
        proto.connection_made(transport)
        proto.data_received(GET)
        await asyncio.sleep(0.3)
        proto.data_received(GET)  # 0.3 s after the first answer: the idle time starts again from this one
        await asyncio.sleep(0.35)
        open_after_second = not transport.closed  # 0.65 s after the first answer, 0.35 s after the second
        await asyncio.sleep(0.6)
        closed_when_idle = transport.closed
        answered = transport.data.count(b"HTTP/1.1 200 ") == 2
        proto.connection_lost(None)
        return open_after_second, closed_when_idle, answered

    assert asyncio.run(run()) == (True, True, True)


def test_a_stream_waits_while_the_transport_asks_to_pause_writing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flow control on the framed path: a part sent while writing is paused waits for resume_writing, as in uvicorn."""
    go, sent = asyncio.Event(), asyncio.Event()
    framed = []
    real = h11_protocol.plain_start

    def spy(*args: Any) -> Any:
        framed.append(real(*args))
        return framed[-1]

    monkeypatch.setattr(h11_protocol, "plain_start", spy)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send(start(headers=[]))
        await send(body(b"one", True))
        await go.wait()
        await send(body(b"two", True))
        sent.set()
        await send(body(b""))

    async def run() -> tuple[bool, bool, bool]:
        config = Config(app, http=BoundedHeadH11Protocol, ws="none", lifespan="off", log_level="critical",
                        proxy_headers=False, access_log=False)
        config.load()
        state = ServerState()
        state.default_headers = list(DATE)
        proto = BoundedHeadH11Protocol(config, state, {}, asyncio.get_running_loop())
        transport = Recorder()
        proto.connection_made(transport)
        proto.data_received(GET)
        for _ in range(20):
            await asyncio.sleep(0)
        first = transport.data.endswith(b"3\r\none\r\n")
        proto.pause_writing()
        go.set()
        for _ in range(20):
            await asyncio.sleep(0)
        held = b"two" not in transport.data and not sent.is_set()
        proto.resume_writing()
        for _ in range(20):
            await asyncio.sleep(0)
        done = transport.data.endswith(b"3\r\ntwo\r\n0\r\n\r\n")
        proto.connection_lost(None)
        return first, held, done

    assert asyncio.run(run()) == (True, True, True)
    assert framed and framed[0] is not None  # (the framed path, not h11's)
