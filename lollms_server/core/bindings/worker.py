"""Loaded local models, each served by one dedicated worker thread, kept in a small LRU cache.

Many inference libraries want every call on a model to come from the same thread, and all of them block.
``ModelWorker`` is that thread: it runs submitted callables one after another and hands each result back to
the asyncio event loop that asked for it. ``ModelCache`` keeps up to ``limit`` models loaded (the least
recently used one goes first), loads each model only once on its own worker, and stops a worker only when
its model is both evicted and no longer in use.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import threading
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, cast

from lollms_server.core.bindings.base import CancelToken

T = TypeVar("T")
M = TypeVar("M")

_END = object()  # what a finished iterator gives back (StopIteration cannot cross into a Future)


@dataclass
class _Job:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    run: Callable[[], Any]


def settle_future(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    """On the event loop: pass the outcome on, unless the caller stopped waiting."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class ModelWorker:
    """One long-lived thread that runs submitted callables in order and returns awaitable results.

    A call whose awaiting coroutine was cancelled before the thread reached it is skipped. ``close()`` lets
    the calls already queued finish, then the thread ends.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the worker thread and wait for its result (or its exception)."""
        if self._closed:
            raise RuntimeError(f"worker '{self.name}' is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_Job(loop, future, functools.partial(fn, *args)))
        return await future

    async def iterate(self, make_items: Callable[[], Iterable[T]], cancel: CancelToken | None = None) -> AsyncGenerator[T, None]:
        """Items of ``make_items()``, which is built and advanced on the worker thread one item per request.

        Nothing is computed ahead of the consumer; iteration stops before the next item once ``cancel`` is
        set, and the iterator's ``close()`` (if any) runs on the worker thread at the end.
        """
        items = await self.call(lambda: iter(make_items()))
        try:
            while cancel is None or not cancel.cancelled:
                item = await self.call(next, items, _END)
                if item is _END:
                    return
                yield cast(T, item)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                await asyncio.shield(self.call(close))

    def close(self) -> None:
        """Stop the thread once the calls already queued are done; does not wait for it."""
        if not self._closed:
            self._closed = True
            self._jobs.put(None)

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            if job.future.cancelled():
                continue
            result: Any = None
            error: BaseException | None = None
            try:
                result = job.run()
            except StopIteration as exc:  # a Future refuses StopIteration, as generators do
                error = RuntimeError(f"{exc!r} raised on worker '{self.name}'")
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine, as an executor does
                error = exc
            with contextlib.suppress(RuntimeError):  # the event loop is already closed: nobody waits
                job.loop.call_soon_threadsafe(settle_future, job.future, result, error)
            del job, result, error


class ModelFiles(Protocol):
    """What the cache needs to know about a model on disk."""

    @property
    def name(self) -> str: ...

    @property
    def key(self) -> str:
        """Identifies the model's files (a path); one loaded copy per key."""
        ...


F = TypeVar("F", bound=ModelFiles)


@dataclass
class LoadedModel(Generic[F, M]):
    """One model in memory with the thread that does all of its work."""

    files: F
    model: M
    worker: ModelWorker
    users: int = 0
    evicted: bool = False

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.worker.call(fn, *args)


class ModelCache(Generic[F, M]):
    """Keeps up to ``limit`` models loaded (least recently used goes first); loads each only once.

    ``load`` runs on the new model's worker thread; ``release`` (optional) runs when a model is dropped.
    """

    def __init__(self, limit: int, load: Callable[[F], M], thread_prefix: str,
                 release: Callable[[M], None] | None = None) -> None:
        self.limit = limit
        self.load = load
        self.thread_prefix = thread_prefix
        self.release = release
        self.loaded: OrderedDict[str, LoadedModel[F, M]] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    def get(self, files: F) -> LoadedModel[F, M] | None:
        """The loaded copy of ``files`` if there is one (does not count as a use)."""
        return self.loaded.get(files.key)

    @contextlib.asynccontextmanager
    async def use(self, files: F) -> AsyncIterator[LoadedModel[F, M]]:
        """The loaded model for ``files`` (loading it first if needed), kept loaded while in use."""
        key = files.key
        async with self._locks.setdefault(key, asyncio.Lock()):
            entry = self.loaded.get(key)
            if entry is None:
                worker = ModelWorker(f"{self.thread_prefix}-{files.name}")
                try:
                    model = await worker.call(self.load, files)
                except BaseException:
                    worker.close()
                    raise
                entry = LoadedModel(files, model, worker)
                self.loaded[key] = entry
            self.loaded.move_to_end(key)
            entry.users += 1
            while len(self.loaded) > self.limit:
                _, old = self.loaded.popitem(last=False)
                self._drop(old)
        try:
            yield entry
        finally:
            entry.users -= 1
            self._close_if_unused(entry)

    def unload(self, name: str | None = None) -> bool:
        """Drop the model called ``name`` (every model when None); True when one was loaded."""
        keys = [k for k, v in self.loaded.items() if name is None or v.files.name == name]
        for key in keys:
            self._drop(self.loaded.pop(key))
        return bool(keys)

    def _drop(self, entry: LoadedModel[F, M]) -> None:
        entry.evicted = True
        self._close_if_unused(entry)

    def _close_if_unused(self, entry: LoadedModel[F, M]) -> None:
        if entry.evicted and entry.users == 0:
            if self.release is not None:
                self.release(entry.model)
            entry.worker.close()
