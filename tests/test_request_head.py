"""api/request_head.py reads request heads as h11 does: the same events and the same errors, with lines remembered.

Each byte stream is fed to a ``HeadConnection`` and to a plain ``h11.Connection`` (server side), twice in a row on
the same connections (the second time the lines come from the memory), and everything ``next_event`` gives — or
the error it raises — is compared.
"""

from __future__ import annotations

from typing import Any

import h11
import pytest

from lollms_server.api import request_head
from lollms_server.api.request_head import HeadConnection

HEAD = (b"POST /api/v1/generate?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9601\r\nUser-Agent: t/1\r\nX-API-Key: k\r\n"
        b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")

STREAMS: dict[str, bytes] = {
    "usual": HEAD,
    "bare LF line ends": HEAD.replace(b"\r\n", b"\n"),
    "spaces around a value": b"GET / HTTP/1.1\r\nHost: a\r\nX-A:   spaced value \t\r\n\r\n",
    "empty value": b"GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n",
    "obsolete line fold": b"GET / HTTP/1.1\r\nHost: a\r\nX-Fold: one\r\n  two\r\n\tthree\r\n\r\n",
    "fold at the start": b"GET / HTTP/1.1\r\n folded\r\nHost: a\r\n\r\n",
    "illegal header line": b"GET / HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n",
    "space before the colon": b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
    "illegal request line": b"GET /\r\nHost: a\r\n\r\n",
    "obviously invalid request line": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    "no request line": b"\r\n\r\n",
    "no Host (HTTP/1.1)": b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n",
    "two Hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "two lengths": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    "a long line (not remembered)": b"GET / HTTP/1.1\r\nHost: a\r\nCookie: " + b"c" * 2000 + b"\r\n\r\n",
    "pipelined": HEAD + HEAD,
    "HTTP/1.0": b"GET / HTTP/1.0\r\nX-A: 1\r\n\r\n",
    "NUL in a value": b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n",
    "head in pieces": HEAD,  # fed a few bytes at a time below
}


def events(conn: h11.Connection, data: bytes, pieces: int) -> list[Any]:
    out: list[Any] = []
    chunks = [data[i:i + pieces] for i in range(0, len(data), pieces)] if pieces else [data]
    for chunk in chunks:
        conn.receive_data(chunk)
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                out.append(("error", str(exc), exc.error_status_hint))
                return out
            if event is h11.NEED_DATA:
                break
            if event is h11.PAUSED:
                out.append("paused")
                conn.send(h11.Response(status_code=200, headers=[(b"content-length", b"0")]))
                conn.send(h11.EndOfMessage())
                conn.start_next_cycle()
                continue
            out.append(event)
            if type(event) is h11.Request:
                out.append(event.headers.raw_items())  # (the names as sent, which equality of events ignores)
            if type(event) is h11.EndOfMessage:
                conn.send(h11.Response(status_code=200, headers=[(b"content-length", b"0")]))
                conn.send(h11.EndOfMessage())
                if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                    conn.start_next_cycle()
    return out


@pytest.mark.parametrize("name", list(STREAMS))
def test_the_same_events_and_errors_as_h11(name: str) -> None:
    pieces = 7 if name == "head in pieces" else 0
    ours, theirs = HeadConnection(h11.SERVER), h11.Connection(h11.SERVER)
    for _ in range(2):  # the second time through the remembered lines
        if ours.their_state is not h11.IDLE:
            break
        got, want = events(ours, STREAMS[name], pieces), events(theirs, STREAMS[name], pieces)
        assert got == want, name
        assert (ours.our_state, ours.their_state) == (theirs.our_state, theirs.their_state)
        assert want  # something was read or refused


def test_the_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(request_head, "LINES_MAX", 8)
    request_head._FIELDS.clear()
    conn = HeadConnection(h11.SERVER)
    for i in range(30):
        assert events(conn, b"GET / HTTP/1.1\r\nHost: a\r\nX-N: %d\r\n\r\n" % i, 0)[0].headers[1] == (b"x-n", b"%d" % i)
        assert len(request_head._FIELDS) <= 8


def test_no_credential_line_is_remembered() -> None:
    request_head._FIELDS.clear()
    head = (b"GET / HTTP/1.1\r\nHost: a\r\nX-API-Key: k1\r\nAuthorization: Bearer s\r\nCookie: c=1\r\n"
            b"X-Provider-Api-Key: sk-1\r\nX-Provider-Base-Url: http://x\r\nAccept: */*\r\n\r\n")
    event = events(HeadConnection(h11.SERVER), head, 0)[0]
    assert dict(event.headers)[b"x-provider-api-key"] == b"sk-1"
    assert set(request_head._FIELDS) == {b"Host: a", b"Accept: */*"}
