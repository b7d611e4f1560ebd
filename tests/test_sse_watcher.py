"""SSEResponse's watcher: pings while the stream waits, one receive kept across pings (no message lost to a
ping's time-out), and a disconnect cancels the stream at once."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

import pytest

from lollms_server.api.sse import SSEResponse

SCOPE: dict[str, Any] = {"type": "http", "method": "POST", "path": "/", "headers": []}


class Client:
    """An ASGI peer: records what is sent; its receive() answers a disconnect after ``disconnect_after`` s."""

    def __init__(self, disconnect_after: float) -> None:
        self.sent: list[dict[str, Any]] = []
        self.receives_started = 0
        self.receives_cancelled = 0
        self.disconnect_after = disconnect_after
        self.t0 = 0.0

    async def receive(self) -> dict[str, Any]:
        self.receives_started += 1
        loop = asyncio.get_running_loop()
        try:
            await asyncio.sleep(max(0.0, self.t0 + self.disconnect_after - loop.time()))
        except asyncio.CancelledError:
            self.receives_cancelled += 1
            raise
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


async def test_pings_while_waiting_and_the_disconnect_cancels_the_stream() -> None:
    closed = asyncio.Event()

    async def slow() -> AsyncIterator[str]:
        try:
            await asyncio.sleep(30)
            yield "never"
        finally:
            closed.set()

    client = Client(disconnect_after=0.35)
    client.t0 = asyncio.get_running_loop().time()
    await asyncio.wait_for(SSEResponse(slow(), keepalive=0.1)(SCOPE, client.receive, client.send), 5)
    body = client.body()
    assert body.count(b": ping") >= 2, body
    assert b"never" not in body
    assert closed.is_set()  # the iterator was closed: its work stopped
    # One receive() waited across all the pings: none was cancelled by a ping's time-out.
    assert client.receives_started == 1 and client.receives_cancelled == 0


async def test_a_stream_that_ends_leaves_no_watcher_running() -> None:
    async def quick() -> AsyncIterator[str]:
        yield "a"
        yield "b"

    client = Client(disconnect_after=60)
    client.t0 = asyncio.get_running_loop().time()
    before = asyncio.all_tasks()
    await asyncio.wait_for(SSEResponse(quick(), keepalive=0.05)(SCOPE, client.receive, client.send), 5)
    await asyncio.sleep(0)
    assert client.body().startswith(b"data: a\r\n\r\ndata: b\r\n\r\n")
    assert client.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    left = [t for t in asyncio.all_tasks() - before if not t.done()]
    assert left == [], left
    assert client.receives_cancelled == client.receives_started  # the pending receive was given up


@pytest.mark.parametrize("keepalive", [0.0, 0.05])
async def test_disconnect_while_the_first_item_is_awaited(keepalive: float) -> None:
    started = asyncio.Event()

    async def stuck() -> AsyncIterator[str]:
        started.set()
        await asyncio.Event().wait()
        yield "never"

    client = Client(disconnect_after=0.12)
    client.t0 = asyncio.get_running_loop().time()
    await asyncio.wait_for(SSEResponse(stuck(), keepalive=keepalive)(SCOPE, client.receive, client.send), 5)
    assert started.is_set() and b"never" not in client.body()
