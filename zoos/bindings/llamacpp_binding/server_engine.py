"""The server engine: each loaded model is one ``llama-server`` child process (parallel slots, continuous batching).

llama.cpp's own C++ server batches concurrent requests on one model (``parallel`` slots decoded together)
and keeps each slot's KV cache plus a RAM cache of prompt prefixes; this module starts it, talks to it
over loopback HTTP (streamed ``/completion``, ``/tokenize``, ``/detokenize``, ``/embeddings``) and restarts it
when it died: a request in flight then fails with a clear error, the next one starts a new process.
Closing a streamed request makes llama-server drop that generation at its next token (cancel).

The stream is per-token work in this process while llama-server's threads decode on the same cores, so it
is read lean: aiohttp (C HTTP parser) instead of httpx's layered line iterator, and every event that
arrived in one read is handed on as one batch (one chunk downstream instead of one per token when this
process falls behind). ``bench/bench_token_cpu.py`` measures the CPU both processes spend per token.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any


from lollms_server.core.errors import BackendError, BadRequestError, UnavailableError

from .gguf_meta import read_gguf_header
from .media import MEDIA_KEY, place_markers
from .server_process import LlamaServerProcess, ServerStartError
from .server_prompt import ModelVocab, PromptFormatter
from .slot_affinity import SlotAffinity
from .worker import LoadSettings, PromptTooLongError

if TYPE_CHECKING:  # aiohttp is imported when the first model starts, not at server start-up
    import aiohttp

log = logging.getLogger("lollms_server.bindings.llamacpp.server")

MAX_EVENT_BYTES = 16 * 1024 * 1024  # one event of llama-server's stream (the final one holds the answer's text)
KEEPALIVE_SECONDS = 2.0  # idle connections kept; llama-server closes its own after 5 s
SEND_ATTEMPTS = 3  # a request that failed before any answer is sent again (see _may_resend)
REAP_SECONDS = 5.0  # how long a failed exchange waits to learn whether llama-server died (busy machines reap late)
CONTROL_TOKEN_TYPES = (2, 3)  # GGUF token types UNKNOWN and CONTROL: not rendered by detokenize (special=False)


class ModelLoadError(BackendError):
    """llama-server could not start with this model."""


@dataclass(frozen=True)
class ServerSettings:
    """How each llama-server is started (from the instance settings)."""

    binary: Path
    parallel: int
    load: LoadSettings
    mmproj: str | None = None  # multimodal projector (mmproj GGUF) ...
    mmproj_model: Path | None = None  # ... of this model only (None: of every model)


def server_args(model_path: Path, s: ServerSettings, embedding: bool, trained_ctx: int = 0) -> list[str]:
    """Command-line flags; one slot's context = n_ctx (0: the model's trained context), so the whole
    context is that times ``parallel``."""
    load = s.load
    parallel = 1 if embedding else s.parallel
    n_ctx = load.n_ctx or trained_ctx
    args = ["-m", str(model_path), "-np", str(parallel), "-b", str(load.n_batch), "-ngl", str(load.n_gpu_layers),
            "--no-webui", "--no-slots", "--log-colors", "off",
            "-fa", "auto" if load.flash_attn is None else "on" if load.flash_attn else "off",  # off by default, as in-process
            "--no-warmup"]
    if n_ctx:
        args += ["-c", str(n_ctx * parallel)]
    if load.n_threads:
        args += ["-t", str(load.n_threads), "-tb", str(load.n_threads)]
    if load.seed is not None:
        args += ["-s", str(load.seed)]
    if embedding:
        args += ["--embeddings", "-ub", str(min(load.n_batch, n_ctx) if n_ctx else load.n_batch)]
    else:
        # prompt prefixes of idle slots saved in RAM (bounded): interleaved conversations keep their history
        args += ["--cache-ram", str(load.prompt_cache_bytes // (1024 * 1024))]
        if s.mmproj and (s.mmproj_model is None or model_path == s.mmproj_model):
            args += ["--mmproj", s.mmproj]
    return args


def _import_client_modules() -> None:
    """What talking to a started llama-server needs: aiohttp, and llama-cpp-python's chat formats (the prompt)."""
    import aiohttp  # noqa: F401
    from llama_cpp import llama_chat_format  # noqa: F401


def _trained_ctx(path: Path) -> int:
    md = read_gguf_header(path).metadata
    value = md.get(f"{md.get('general.architecture')}.context_length")
    return value if isinstance(value, int) and value > 0 else 0


def _control_ids(path: Path) -> frozenset[int]:
    header = read_gguf_header(path, keep_arrays=("tokenizer.ggml.token_type",))
    types = header.metadata.get("tokenizer.ggml.token_type") or []
    return frozenset(i for i, t in enumerate(types) if t in CONTROL_TOKEN_TYPES)


class ServerModel:
    """One model served by its own llama-server; started on first use and again after a crash."""

    def __init__(self, key: str, model_path: Path, label: str, settings: ServerSettings, embedding: bool = False) -> None:
        self.key, self.model_path, self.label, self.embedding = key, model_path, label, embedding
        self.settings = settings
        self.process = LlamaServerProcess(settings.binary, server_args(model_path, settings, embedding), label)
        self._lock = asyncio.Lock()
        self._client: aiohttp.ClientSession | None = None
        self.formatter: PromptFormatter | None = None
        self.vocab: ModelVocab | None = None
        self.n_vocab = 0
        self.n_ctx_slot = 0
        self.control_ids: frozenset[int] = frozenset()
        self.media_marker = ""  # where an image goes in a prompt; empty: started without a projector
        self.restarts = 0
        self.closed = False
        self._running = False
        self._starter: asyncio.Task[Any] | None = None  # the request starting the process (it must not wait for itself)
        self.slots = SlotAffinity(1 if embedding else settings.parallel)

    # ---- lifecycle ---------------------------------------------------------------------------
    async def ready(self) -> ServerModel:
        """Start the process if it is not running (first use, or after it died)."""
        if self.closed:
            raise UnavailableError(f"model '{self.label}' was unloaded before the request ran; retry")
        if self._running and not self.process.exited:
            return self
        async with self._lock:
            if self.closed:
                raise UnavailableError(f"model '{self.label}' was unloaded before the request ran; retry")
            if not self._running or self.process.exited:
                self._running = False
                self._starter = asyncio.current_task()
                if self._client is not None:
                    self.restarts += 1
                    self.slots.forget()
                    log.warning("llama-server for %s had stopped (exit code %s); restarting it",
                                self.label, self.process.proc.returncode if self.process.proc else None)
                    await self._client.close()
                    self._client = None
                if not self.settings.load.n_ctx:
                    self.process.args = server_args(self.model_path, self.settings, self.embedding,
                                                    await asyncio.to_thread(_trained_ctx, self.model_path))
                # the modules this process needs next are imported in a thread while llama-server loads the
                # model (~0.4 s of imports that would otherwise follow the load, on the event loop)
                imports = asyncio.ensure_future(asyncio.to_thread(_import_client_modules))
                try:
                    await self.process.start()
                except ServerStartError as exc:
                    raise ModelLoadError(f"llama-server could not load model '{self.label}': {exc}") from None
                finally:
                    await imports
                import aiohttp

                self._client = aiohttp.ClientSession(
                    base_url=self.process.url, timeout=aiohttp.ClientTimeout(total=None, sock_connect=5.0),
                    connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE_SECONDS),
                    auto_decompress=False, trust_env=False)
                if self.vocab is None:
                    await self._read_model()
                self._running = True  # only now: concurrent requests wait on the lock until the model is read
                self._starter = None
        return self

    async def _read_model(self) -> None:
        props = await self._json("GET", "/props")
        if (props.get("modalities") or {}).get("vision"):
            self.media_marker = str(props.get("media_marker") or "")
        models = await self._json("GET", "/v1/models")
        meta = (models.get("data") or [{}])[0].get("meta") or {}
        self.n_vocab = int(meta.get("n_vocab") or 0)
        self.n_ctx_slot = int(meta.get("n_ctx") or 0)
        header = await asyncio.to_thread(read_gguf_header, self.model_path)
        self.control_ids = await asyncio.to_thread(_control_ids, self.model_path)
        strings = {k: v for k, v in header.metadata.items() if isinstance(v, str)}
        eos_text, bos_text = str(props.get("eos_token") or ""), str(props.get("bos_token") or "")
        eos = await self.tokenize(eos_text, add_special=False) if eos_text else []
        bos = await self.tokenize(bos_text, add_special=False) if bos_text else []
        leading = await self.tokenize("", add_special=True)
        self.vocab = ModelVocab(strings, bos_text, eos_text, eos[0] if len(eos) == 1 else -1,
                                bos[0] if len(bos) == 1 else -1, bool(leading))
        if not self.embedding:  # compiles the model's chat templates: off the event loop
            self.formatter = await asyncio.to_thread(PromptFormatter, self.vocab, self.settings.load.chat_format)

    async def stop(self) -> None:
        self.closed = True
        async with self._lock:
            self._running = False
            if self._client is not None:
                await self._client.close()
                self._client = None
            await self.process.stop()

    # ---- HTTP --------------------------------------------------------------------------------
    async def _reaped(self) -> None:
        """Give a process that may have died up to REAP_SECONDS to be reaped (the child watcher is slow under load)."""
        deadline = time.monotonic() + REAP_SECONDS
        while not self.process.exited and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def _gone(self, exc: Exception) -> BackendError:
        """The error for a failed exchange; when the process died, says so (after giving it a second to be reaped)."""
        await self._reaped()
        if self.process.exited and not self.process.stopping:
            code = self.process.proc.returncode if self.process.proc else None
            return BackendError(f"llama-server for model '{self.label}' stopped (exit code {code}) during the request; "
                                f"it restarts with the next request: {self.process.last_lines(3)}")
        return BackendError(f"llama-server for model '{self.label}' failed: {type(exc).__name__}: {exc}")

    async def _recover(self) -> bool:
        """After a refused connection: if the process died, start a new one (the request never reached the
        old one, so it can be sent again). False when the process is still running."""
        await self._reaped()
        if not self.process.exited or self.process.stopping or self.closed or self._starter is asyncio.current_task():
            return False
        await self.ready()
        return True

    async def _may_resend(self, exc: Exception, attempt: int) -> bool:
        """Whether a request that failed before any answer may be sent again: when llama-server had closed the
        pooled connection (it closes idle ones after 5 s), or refused it because it died (it is restarted)."""
        import aiohttp

        if attempt + 1 >= SEND_ATTEMPTS or not isinstance(exc, aiohttp.ClientConnectionError):
            return False
        if isinstance(exc, aiohttp.ClientConnectorError):  # refused: nothing listens on the port any more
            return await self._recover()
        return not self.process.exited

    async def _json(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        import aiohttp

        for attempt in range(SEND_ATTEMPTS):
            assert self._client is not None
            try:
                async with self._client.request(method, path, json=body) as r:
                    status, raw = r.status, await r.read()
                break
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                if not await self._may_resend(exc, attempt):  # all llama-server's JSON routes are idempotent
                    raise await self._gone(exc) from None
        if status != 200:
            raise self._error(status, raw.decode("utf-8", errors="replace"))
        return json.loads(raw)

    def _error(self, status: int, text: str) -> Exception:
        try:
            err = json.loads(text).get("error") or {}
            message = str(err.get("message") or text)
        except (ValueError, AttributeError):
            message = text
        if status == 400:
            return BadRequestError(f"llama.cpp refused the request: {message[:500]}")
        return BackendError(f"llama-server answered {status}: {message[:500]}")

    # ---- tokens ------------------------------------------------------------------------------
    async def tokenize(self, text: str, *, add_special: bool) -> list[int]:
        data = await self._json("POST", "/tokenize", {"content": text, "add_special": add_special, "parse_special": True})
        return [int(t) for t in data["tokens"]]

    async def detokenize(self, tokens: list[int]) -> str:
        bad = [t for t in tokens if not 0 <= t < self.n_vocab]
        if bad:
            raise BadRequestError(f"token ids {bad[:5]} are outside the model's vocabulary (0..{self.n_vocab - 1})")
        shown = [t for t in tokens if t not in self.control_ids]  # like llama.cpp's detokenize with special=False
        data = await self._json("POST", "/detokenize", {"tokens": shown})
        return str(data["content"])

    # ---- generation --------------------------------------------------------------------------
    async def completion_request(self, messages: list[dict[str, Any]], sampling: dict[str, Any],
                                 setup: Any = None) -> dict[str, Any]:
        """The /completion body for a chat request, formatted as llama-cpp-python formats it.

        Images (under media.MEDIA_KEY of a message) become media markers in the text; the prompt is then
        llama-server's multimodal form {prompt_string, multimodal_data}."""
        assert self.formatter is not None and self.vocab is not None
        media: list[str] = []
        if any(MEDIA_KEY in m for m in messages):
            if not self.media_marker:
                raise BadRequestError(f"model '{self.label}' runs without a multimodal projector: it takes no images")
            messages, media = place_markers(messages, self.media_marker)
        if setup is not None:
            from .server_prompt import CapturingLlama

            stand_in = CapturingLlama(self.formatter.chat_format, self.vocab.metadata)
            messages, extra, _ = await asyncio.to_thread(setup.prepare, stand_in, messages)
            sampling = {**{k: v for k, v in sampling.items() if k != "response_format"}, **extra}
        captured = await asyncio.to_thread(self.formatter.capture, messages, sampling)
        assert captured.prompt is not None
        if media:
            return self.formatter.completion_body(captured, self._media_prompt(captured.prompt, media))
        prompt: Any = captured.prompt.text
        if self.vocab.specials_at_start and not captured.prompt.add_bos:
            prompt = await self.tokenize(prompt, add_special=False)  # the server would put a BOS first
        count = len(prompt) if isinstance(prompt, list) else None
        window = self.n_ctx_slot
        if window and (count is not None or len(captured.prompt.text.encode("utf-8")) + 1 >= window):
            count = count if count is not None else len(await self.tokenize(captured.prompt.text, add_special=captured.prompt.add_bos))
            if count + 1 >= window:
                raise PromptTooLongError(count + 1, window)
        return self.formatter.completion_body(captured, prompt)

    def _media_prompt(self, prompt: Any, media: list[str]) -> dict[str, Any]:
        """llama-server's multimodal prompt; mtmd adds the model's BOS itself (when the model wants one)."""
        assert self.vocab is not None
        text: str = prompt.text
        if text.count(self.media_marker) != len(media):
            raise BadRequestError(f"the chat template of model '{self.label}' kept {text.count(self.media_marker)} of "
                                  f"{len(media)} images; send the images in user messages")
        bos = self.vocab.bos_text
        if self.vocab.specials_at_start and not prompt.add_bos and bos and text.startswith(bos):
            text = text[len(bos):]  # the template wrote the BOS: mtmd would add a second one
        return {"prompt_string": text, "multimodal_data": media}

    async def stream(self, body: dict[str, Any]) -> AsyncGenerator[list[dict[str, Any]], None]:
        """The server's streamed events, in batches (the events that arrived together); closing this generator
        closes the request (llama-server cancels).

        The request is pinned to the idle slot whose KV cache it continues (see slot_affinity)."""
        slot = self.slots.take(body["prompt"])
        if slot is not None:
            body = {**body, "id_slot": slot}
        try:
            async for batch in self._stream(body):
                yield batch
        finally:
            if slot is not None:
                self.slots.release(slot, body["prompt"])

    async def _stream(self, body: dict[str, Any]) -> AsyncGenerator[list[dict[str, Any]], None]:
        import aiohttp

        for attempt in range(SEND_ATTEMPTS):
            assert self._client is not None
            try:
                r = await self._client.post("/completion", json=body)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                if await self._may_resend(exc, attempt):  # llama-server never started this request
                    continue
                raise await self._gone(exc) from None
            try:
                if r.status != 200:
                    raise self._error(r.status, (await r.read()).decode("utf-8", errors="replace"))
                async for batch in self._batches(r.content):
                    yield batch
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise await self._gone(exc) from None
            finally:
                if r.content.at_eof():
                    r.release()  # read to its end: the connection is kept for the next request
                else:
                    r.close()  # left early: closing the connection makes llama-server drop the generation
            return

    async def _batches(self, content: aiohttp.StreamReader) -> AsyncGenerator[list[dict[str, Any]], None]:
        """The ``data:`` events of the bytes read so far, whole events only, one list per read."""
        pending = b""
        async for data in content.iter_any():
            pending = pending + data if pending else data
            end = pending.rfind(b"\n\n")
            if end < 0:
                if len(pending) > MAX_EVENT_BYTES:
                    raise BackendError(f"llama-server for model '{self.label}' sent an event of more than {MAX_EVENT_BYTES} bytes")
                continue
            complete, pending = pending[:end], pending[end + 2:]
            batch = []
            for raw in complete.split(b"\n\n"):
                if raw.startswith(b"data: "):
                    event = json.loads(raw[6:])
                    if "error" in event:
                        raise self._error(int(event["error"].get("code") or 500), json.dumps(event))
                    batch.append(event)
            if batch:
                yield batch

    # ---- embeddings --------------------------------------------------------------------------
    async def embed(self, texts: list[str]) -> tuple[list[list[Any]], int]:
        """Raw vectors per text (one per token when the model has no pooling) and the token count."""
        data = await self._json("POST", "/embeddings", {"content": texts, "embd_normalize": 2})
        items = sorted(data, key=lambda d: d.get("index", 0)) if isinstance(data, list) else [data]
        vectors = [item["embedding"] for item in items]
        count = 0
        for text, v in zip(texts, vectors):
            count += len(v) if v and isinstance(v[0], list) and len(v) > 1 else len(await self.tokenize(text, add_special=True))
        return vectors, count


class ServerPool:
    """The llama-server processes of one instance, least recently used first, at most ``max_loaded``.

    A request leases its model for its whole duration: a model pushed out of the pool (LRU) is stopped
    only once its last request ended, so a request never sees its model switched under it.
    """

    def __init__(self, settings: ServerSettings, max_loaded: int, instance_name: str) -> None:
        self.settings, self.max_loaded, self.instance_name = settings, max_loaded, instance_name
        self.models: OrderedDict[str, ServerModel] = OrderedDict()
        self._leases: dict[ServerModel, int] = {}
        self._retired: set[ServerModel] = set()
        self._stopping: set[asyncio.Task[None]] = set()

    def loaded_keys(self) -> list[str]:
        return list(self.models)

    def _acquire(self, key: str, path: Path, label: str, embedding: bool) -> ServerModel:
        model = self.models.get(key)
        if model is None:
            while len(self.models) >= self.max_loaded:
                _, evicted = self.models.popitem(last=False)
                log.info("llamacpp '%s': unloading %s for %s (max_loaded_models=%d)", self.instance_name,
                         evicted.label, label, self.max_loaded)
                self._retire(evicted)
            model = ServerModel(key, path, label, self.settings, embedding)
            self.models[key] = model
        self.models.move_to_end(key)
        return model

    def _retire(self, model: ServerModel) -> None:
        if self._leases.get(model, 0) > 0:
            self._retired.add(model)  # stopped when its last request ends
            return
        task = asyncio.get_running_loop().create_task(model.stop())
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    @contextlib.asynccontextmanager
    async def use(self, key: str, path: Path, label: str, embedding: bool = False) -> AsyncIterator[ServerModel]:
        model = self._acquire(key, path, label, embedding)
        self._leases[model] = self._leases.get(model, 0) + 1
        try:
            try:
                await model.ready()
            except (BackendError, UnavailableError):
                if self.models.get(key) is model and model.vocab is None:
                    del self.models[key]  # never started: the next request tries again from scratch
                raise
            yield model
        finally:
            self._leases[model] -= 1
            if not self._leases[model]:
                del self._leases[model]
                if model in self._retired:
                    self._retired.discard(model)
                    self._retire(model)

    def unload(self, key: str) -> bool:
        model = self.models.pop(key, None)
        if model is None:
            return False
        self._retire(model)
        return True

    async def stop_all(self) -> None:
        models = list(self.models.values()) + list(self._retired)
        self.models.clear()
        self._retired.clear()
        await asyncio.gather(*(m.stop() for m in models), *list(self._stopping), return_exceptions=True)

    def pids(self) -> list[int]:
        return [m.process.pid for m in self.models.values() if m.process.pid is not None and not m.process.exited]
