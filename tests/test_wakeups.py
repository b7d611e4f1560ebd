"""wait_set and acquire_within: a wake-up with a timeout that never swallows a cancel (asyncio.wait_for before
3.12 does), and a slot granted in the turn of the cancel is given back."""

from __future__ import annotations

import asyncio

import pytest

from lollms_server.core.resources import MemorySlotStore
from lollms_server.core.wakeups import acquire_within, wait_set


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



async def _queued(semaphore: asyncio.Semaphore) -> None:
    """Until a waiter is queued on ``semaphore`` (the waiting task and its acquire have both run)."""
    for _ in range(100):
        if semaphore._waiters:  # noqa: SLF001 - the only way to see that the acquire is parked
            return
        await asyncio.sleep(0)
    raise AssertionError("no waiter was queued on the semaphore")


async def test_acquire_within_takes_times_out_and_gives_back_a_grant_that_meets_a_cancel() -> None:
    sem = asyncio.Semaphore(1)
    assert await acquire_within(sem, 1) is True  # free: taken
    assert await acquire_within(sem, 0.01) is False  # held: the time runs out
    task = asyncio.create_task(acquire_within(sem, 10))
    await _queued(sem)
    sem.release()  # the slot goes to the waiter...
    task.cancel()  # ...in the same loop turn as its cancel: the cancel must win and the slot come back
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert not sem.locked()
    assert await acquire_within(sem, 0.01) is True


async def test_memory_slot_waiter_cancelled_as_its_slot_is_granted_neither_runs_on_nor_keeps_it() -> None:
    store = MemorySlotStore(1, 8)
    assert await store.acquire("first", 1) == "granted"
    task = asyncio.create_task(store.acquire("second", 10))
    await _queued(store._sem)  # noqa: SLF001
    await store.release("first")  # grants the slot to "second" (release does not suspend: same loop turn)
    task.cancel()  # the client of "second" went away in that turn
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert await store.counts() == (0, 0)
    assert await store.acquire("third", 0.01) == "granted"  # the slot is free for the next request
