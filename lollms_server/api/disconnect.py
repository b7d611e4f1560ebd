"""Cancel a non-streaming request's work when its client goes away."""

from __future__ import annotations

import asyncio
from typing import Awaitable, TypeVar

from starlette.requests import Request

T = TypeVar("T")


class ClientGone(Exception):
    pass


async def run_until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await ``work`` in this task; if the client disconnects first, cancel it and raise ClientGone.

    The request body must have been read: a small watcher task waits for the server's ``http.disconnect``
    message and cancels this task the moment it comes (no polling, and the work needs no task of its own).
    The watcher starts when the work first waits for something: work that finishes without waiting (an
    answer at hand) costs no task at all.
    """
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    gone = False
    watcher: asyncio.Task[None] | None = None

    async def watch() -> None:
        nonlocal gone
        while (await request.receive())["type"] != "http.disconnect":
            pass
        gone = True
        task.cancel()

    def start() -> None:
        nonlocal watcher
        watcher = loop.create_task(watch())

    starting = loop.call_soon(start)  # runs at the loop's next turn: only if the work let it run
    try:
        return await work
    except asyncio.CancelledError:
        if not gone:
            raise
        if hasattr(task, "uncancel"):  # Python 3.11+: the cancel was ours, and is handled here
            task.uncancel()
        raise ClientGone() from None
    finally:
        starting.cancel()
        if watcher is not None:
            watcher.cancel()
