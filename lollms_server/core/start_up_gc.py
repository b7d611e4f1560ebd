"""The cyclic garbage collector while the server starts: no full passes over what start-up builds.

Start-up builds objects that live as long as the server (modules, routes, schemas, plugins) and makes
little garbage. A full collection walks every object built so far, and CPython runs one each time the
heap has grown by a quarter: about a tenth of start-up's CPU (``bench/bench_startup.py``). ``relax()`` (by
``serve``, before its imports) leaves the young generations collected as usual and holds the full passes
back; ``settle()`` (when the start-up is done) freezes what start-up built out of every later collection
and restores the thresholds.
"""

from __future__ import annotations

import gc

_saved: tuple[int, int, int] | None = None


def relax() -> None:
    global _saved
    if _saved is None:
        _saved = gc.get_threshold()
        gc.set_threshold(_saved[0], _saved[1], 1_000_000)  # the oldest generation: not before settle()


def settle() -> None:
    global _saved
    gc.freeze()
    if _saved is not None:
        gc.set_threshold(*_saved)
        _saved = None
