"""Waiting for a wake-up (an event, a semaphore's slot) with a timeout, without losing a cancel.

``asyncio.wait_for`` (before Python 3.12) returns normally when the cancel of the waiting task arrives in
the same loop turn as the wake-up: the cancel is swallowed and the task runs on (a follower or a slot waiter
whose client went away keeps going). ``asyncio.wait`` never swallows it.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def wait_set(event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds passed; True when it is set. A cancel propagates."""
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=max(0.0, timeout))
    finally:
        waiter.cancel()
    return event.is_set()


async def acquire_within(semaphore: asyncio.Semaphore, timeout: float) -> bool:
    """Take one slot of ``semaphore`` within ``timeout`` seconds; True when taken, False when the time ran out.

    A cancel propagates; a slot granted in the same loop turn as the cancel (or as the time-out) is given back,
    so a cancelled waiter never runs on and never keeps a slot.
    """
    if timeout > 0 and not semaphore.locked():
        return await semaphore.acquire()  # free and nobody waiting: taken without suspending
    waiter = asyncio.ensure_future(semaphore.acquire())
    try:
        await asyncio.wait({waiter}, timeout=max(0.0, timeout))
    except BaseException:  # cancelled while waiting
        _abandon(semaphore, waiter)
        raise
    if waiter.done():
        return waiter.result()
    _abandon(semaphore, waiter)  # the time ran out
    return False


def _abandon(semaphore: asyncio.Semaphore, waiter: asyncio.Future[Any]) -> None:
    """Stop waiting: a grant that has happened or is on its way is released, not kept."""
    def give_back(done: asyncio.Future[Any]) -> None:
        if not done.cancelled() and done.exception() is None:
            semaphore.release()

    waiter.add_done_callback(give_back)
    waiter.cancel()
