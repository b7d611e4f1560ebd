"""One long-lived OS thread per loaded model: every llama.cpp call of that model runs on it.

Why: this llama.cpp build uses OpenMP; once a second OS thread of the process has called into it,
libgomp stops spin-waiting and generation slows down about 3x for the rest of the process. So no
``asyncio.to_thread`` per request: jobs go through a FIFO queue to the model's own thread, which also
loads and frees the model. Tokens travel back with ``loop.call_soon_threadsafe`` into an asyncio queue.
A worker thread is reused when its model is swapped out (LRU), so the number of threads that ever
call llama.cpp stays at the instance's ``max_loaded_models``.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lollms_server.core.bindings.base import CancelToken
from lollms_server.core.bindings.worker import settle_future
from lollms_server.core.errors import BadRequestError

log = logging.getLogger("lollms_server.bindings.llamacpp")

Job = Callable[["LlamaWorker"], None]

_INSTRUMENTED: type | None = None


class PromptTooLongError(BadRequestError):
    def __init__(self, asked: int, window: int) -> None:
        super().__init__(
            f"the prompt is {asked} tokens once formatted for the model; its context holds {window} tokens "
            f"(prompt + answer): shorten the conversation or use a model or n_ctx with a larger context"
        )
        self.asked, self.window = asked, window


@dataclass
class RunState:
    """Counters of one generation, filled in by the instrumented ``generate`` on the worker thread."""

    cancel: CancelToken
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cancelled: bool = False
    prompt_evaluated: int | None = None  # prompt tokens llama.cpp really computed (the rest came from a cache)


def instrumented_llama_class() -> type:
    """A ``Llama`` subclass whose token loop checks the cancel flag and counts tokens (also when streaming)."""
    global _INSTRUMENTED
    if _INSTRUMENTED is None:
        import llama_cpp
        from llama_cpp import Llama

        class InstrumentedLlama(Llama):  # type: ignore[misc]
            run_state: RunState | None = None

            def create_completion(self, prompt: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
                """Refuse a prompt that leaves no room in the context with a 400 saying the numbers."""
                if self.run_state is not None:
                    tokens = prompt if isinstance(prompt, list) else self.tokenize(str(prompt).encode("utf-8"), add_bos=False, special=True)
                    asked, window = len(tokens) + 1, self.n_ctx()  # + the BOS token llama.cpp may add
                    if asked >= window:
                        raise PromptTooLongError(asked, window)
                return super().create_completion(prompt, *args, **kwargs)

            def generate(self, tokens: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
                state = self.run_state
                inner = super().generate(tokens, *args, **kwargs)
                if state is None:
                    yield from inner
                    return
                state.prompt_tokens = len(tokens)
                state.prompt_evaluated = None
                vocab = self._model.vocab
                try:
                    for token in inner:
                        if state.cancel.cancelled:
                            state.cancelled = True
                            return
                        if not llama_cpp.llama_vocab_is_eog(vocab, token):
                            state.completion_tokens += 1
                        yield token
                finally:
                    inner.close()

            def eval(self, tokens: Any) -> None:  # type: ignore[override]
                """The first call of a generation feeds the prompt tokens not found in the KV cache."""
                state = self.run_state
                if state is not None and state.prompt_evaluated is None:
                    state.prompt_evaluated = len(tokens)
                super().eval(tokens)

            def save_state(self) -> Any:
                """The library's snapshot keeps up to n_batch rows of logits (n_vocab floats each, ~100 MB for a
                50k vocabulary); restoring re-evaluates the last token anyway, so keep only the last row."""
                saved = super().save_state()
                saved.scores = saved.scores[-1:].copy()
                return saved

        _INSTRUMENTED = InstrumentedLlama
    return _INSTRUMENTED


def prompt_cache(capacity_bytes: int) -> Any:
    """A RAM cache of KV snapshots keyed by token sequence, bounded by the bytes the snapshots really hold.

    llama-cpp-python consults it before each completion (the snapshot sharing the longest prefix with the
    prompt is restored when it beats the live context) and stores a snapshot after each one, so interleaved
    conversations each keep their prefix. A new snapshot replaces those whose tokens it extends (the earlier
    turns of the same conversation); the least recently used go first when the bound is passed.
    """
    from llama_cpp import LlamaRAMCache

    class BoundedPromptCache(LlamaRAMCache):  # type: ignore[misc]
        @property
        def cache_size(self) -> int:
            return sum(s.llama_state_size + s.scores.nbytes + s.input_ids.nbytes for s in self.cache_state.values())

        def __setitem__(self, key: Any, value: Any) -> None:
            new = tuple(key)
            for old in [k for k in self.cache_state if len(k) <= len(new) and new[:len(k)] == k]:
                del self.cache_state[old]
            super().__setitem__(new, value)

    return BoundedPromptCache(capacity_bytes=capacity_bytes)


@dataclass(frozen=True)
class LoadSettings:
    n_ctx: int
    n_threads: int | None
    n_batch: int
    n_gpu_layers: int
    chat_format: str | None
    seed: int | None
    embedding: bool = False  # loaded to compute embeddings (a separate copy from the chat one)
    prompt_cache_bytes: int = 0  # per-conversation KV snapshots kept in RAM (0: only the live context)
    flash_attn: bool | None = False  # None: llama-server decides, in-process off (binding card)

    def llama_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "n_ctx": self.n_ctx, "n_batch": self.n_batch, "n_gpu_layers": self.n_gpu_layers,
            "chat_format": self.chat_format, "verbose": False, "flash_attn": bool(self.flash_attn),
        }
        if self.embedding:
            kw["embedding"] = True
            if self.n_ctx:  # llama.cpp embeds batches of up to n_batch tokens: they must fit the context
                kw["n_batch"] = min(self.n_batch, self.n_ctx)
        if self.n_threads:
            kw["n_threads"] = self.n_threads
            kw["n_threads_batch"] = self.n_threads
        if self.seed is not None:
            kw["seed"] = self.seed
        return kw


@dataclass
class LlamaWorker:
    """A thread that owns at most one ``Llama`` at a time and runs queued jobs in order."""

    name: str
    llm: Any = None
    model_key: str | None = None
    _jobs: queue.SimpleQueue[Job | None] = field(default_factory=queue.SimpleQueue)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"llama-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                break
            try:
                job(self)
            except BaseException:  # a job reports its own errors; this only keeps the thread alive
                log.exception("llama worker job failed")
        self._free()

    def _free(self) -> None:
        if self.llm is not None:
            try:
                self.llm.close()
            except Exception:  # closing a model must never kill the worker
                log.warning("closing model %s failed", self.model_key, exc_info=True)
        self.llm = None
        self.model_key = None

    def submit(self, job: Job) -> None:
        self._jobs.put(job)

    def call(self, fn: Callable[[LlamaWorker], Any]) -> asyncio.Future[Any]:
        """Run ``fn(worker)`` on the worker thread; its result or exception lands in an asyncio future."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()

        def job(worker: LlamaWorker) -> None:
            try:
                result = fn(worker)
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                post(loop, settle_future, fut, None, exc)
            else:
                post(loop, settle_future, fut, result, None)

        self.submit(job)
        return fut

    def load(self, key: str, path: Path, settings: LoadSettings) -> None:
        """On the worker thread: free the current model, then load ``path`` (raises on failure)."""
        self._free()
        llama_cls = instrumented_llama_class()
        self.llm = llama_cls(model_path=str(path), **settings.llama_kwargs())
        self.model_key = key
        if settings.prompt_cache_bytes and not settings.embedding:
            self.llm.set_cache(prompt_cache(settings.prompt_cache_bytes))

    def unload(self, key: str) -> None:
        """On the worker thread: free the model if it is still ``key``."""
        if self.model_key == key:
            self._free()

    def stop(self) -> None:
        self._jobs.put(None)

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


def post(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> bool:
    """Schedule ``fn(*args)`` on the event loop from the worker thread; False when the loop is gone."""
    try:
        loop.call_soon_threadsafe(fn, *args)
        return True
    except RuntimeError:  # loop closed (server shutting down)
        return False
