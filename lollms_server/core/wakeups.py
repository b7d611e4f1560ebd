"""Waiting for a wake-up with a timeout, without losing a cancel.

``asyncio.wait_for`` (before Python 3.12) returns normally when the cancel of the waiting task arrives in
the same loop turn as the wake-up: the cancel is swallowed and the task runs on (a follower or a slot waiter
whose client went away keeps going). ``asyncio.wait`` never swallows it.
"""

from __future__ import annotations

import asyncio


async def wait_set(event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds passed; True when it is set. A cancel propagates."""
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=max(0.0, timeout))
    finally:
        waiter.cancel()
    return event.is_set()
