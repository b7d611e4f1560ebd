"""The cyclic garbage collector while the server starts: off, then what start-up built is frozen.

Start-up builds objects that live as long as the server (modules, routes, schemas, plugins) and makes
little garbage. The collector's passes over them are pure cost: its young-generation passes are about 7%
of start-up's CPU and the full passes (one each time the heap has grown by a quarter) about a tenth
(``bench/bench_startup.py``). ``relax()`` (by ``serve``, before its imports) turns the collector off;
``settle()`` (when the start-up is done) moves everything start-up built out of every later collection
(``gc.freeze()``) and turns the collector back on as it was.

What start-up left as cyclic garbage is frozen with the rest instead of collected: about 2,200 objects with
the default configuration (well under a megabyte, once), where the full collection that would find them
costs as much CPU as everything else the collector saves. Nothing of the server relies on the collector to
release a resource (files, sockets and threads are closed explicitly).
"""

from __future__ import annotations

import gc

_was_enabled: bool | None = None


def relax() -> None:
    global _was_enabled
    if _was_enabled is None:
        _was_enabled = gc.isenabled()
        gc.disable()


def settle() -> None:
    global _was_enabled
    gc.freeze()
    if _was_enabled is not None:
        if _was_enabled:
            gc.enable()
        _was_enabled = None
