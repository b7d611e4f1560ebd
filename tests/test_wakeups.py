"""wait_set: a wake-up with a timeout that never swallows a cancel (asyncio.wait_for before 3.12 does)."""

from __future__ import annotations

import asyncio

import pytest

from lollms_server.core.wakeups import wait_set


async def test_set_timeout_and_a_cancel_that_meets_the_wake_up() -> None:
    event = asyncio.Event()
    assert await wait_set(event, 0.01) is False  # timed out
    event.set()
    assert await wait_set(event, 10) is True
    event.clear()
    task = asyncio.create_task(wait_set(event, 10))
    await asyncio.sleep(0)  # the task waits now
    event.set()
    task.cancel()  # in the same loop turn as the wake-up: the cancel must win
    with pytest.raises(asyncio.CancelledError):
        await task

