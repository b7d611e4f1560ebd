"""llamacpp_binding: local GGUF models through llama.cpp.

Two engines behind one binding (instance setting ``engine``): ``server`` runs each loaded model in its own
``llama-server`` child process (concurrent requests batched over parallel slots; ``server_engine.py``),
``inprocess`` runs it in this process with llama-cpp-python, one worker thread per loaded model.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import importlib.util
import logging
import contextlib
import random
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from lollms_server.core.bindings.base import (
    Binding,
    BindingResult,
    GenerationTask,
    StreamEvent,
)
from lollms_server.core.tools import tool_call_output
from lollms_server.core.embeddings import EmbeddingResult
from lollms_server.core.machine import physical_cores
from lollms_server.core.file_cache import FileCache
from lollms_server.core.errors import (
    BackendError,
    BadRequestError,
    FeatureNotSupportedError,
    LollmsError,
    QueueFullError,
    UnavailableError,
    echo,
)
from lollms_server.core.inputs import IMAGE_ROLES
from lollms_server.core.resources import RETRY_AFTER_SECONDS

from . import media, server_generation
from .chat import END, ChatJob, ChatResult, run_chat, sampling_arguments, start_stream
from .gguf_meta import GGUFError, read_gguf_header
from .models import ModelLocator, ModelSource
from .projector import Projector, image_limits, projector_path
from .server_binary import find_llama_server
from .server_engine import ModelLoadError, ServerModel, ServerPool, ServerSettings
from .tool_calls import HeldText, parse_calls, setup_for
from .worker import LlamaWorker, LoadSettings, PromptTooLongError

log = logging.getLogger("lollms_server.bindings.llamacpp")
TEMPLATE_ALLOWANCE = 16  # tokens a chat template may add per message (role markers), for the quick fit check


def pool_tokens(vector: Any) -> list[float]:
    """A model without a pooling layer gives one vector per token: average them and normalise."""
    if vector and isinstance(vector[0], list):
        n = len(vector)
        mean = [sum(col) / n for col in zip(*vector)]
        norm = sum(x * x for x in mean) ** 0.5 or 1.0
        return [x / norm for x in mean]
    return [float(x) for x in vector]


def normalized(vector: list[float]) -> list[float]:
    norm = sum(x * x for x in vector) ** 0.5 or 1.0
    return [float(x) / norm for x in vector]


_SOUND_GGUF = FileCache("gguf_headers_checked")  # unchanged files whose header was read whole once


def _check_gguf(source: ModelSource) -> None:
    """Read the file's GGUF header without loading the model (cheap, no llama.cpp call; once per file
    while it is unchanged, core/file_cache.py)."""
    try:
        _SOUND_GGUF.get(source.path, lambda: read_gguf_header(source.path) is not None)
    except (GGUFError, OSError, EOFError) as exc:
        raise BackendError(f"model '{source.name}' failed to load: {exc}") from None


@dataclass
class LoadedModel:
    """A model assigned to a worker thread; ``ready`` resolves when its load job has run."""

    key: str
    source: ModelSource
    worker: LlamaWorker
    ready: asyncio.Future[Any]
    replaced: ModelSource | None = None  # the model unloaded to make room: reloaded if this one fails


class LlamaCppBinding(Binding):
    binding_type_name: ClassVar[str] = "llamacpp_binding"
    input_roles: ClassVar[frozenset[str]] = frozenset({"user_prompt", "system_context", "assistant_reply"})
    accepted_mime_types: ClassVar[dict[str, tuple[str, ...]]] = {"image": media.ACCEPTED_MIME_TYPES}

    def __init__(self, config: dict[str, Any], resource_manager: Any) -> None:
        super().__init__(config, resource_manager)
        self.settings = LoadSettings(
            n_ctx=int(config.get("n_ctx") or 0), n_threads=int(config.get("n_threads") or physical_cores()),
            n_batch=int(config.get("n_batch") or 512), n_gpu_layers=int(config.get("n_gpu_layers") or 0),
            chat_format=config.get("chat_format") or None, seed=config.get("seed"),
            prompt_cache_bytes=int(config.get("prompt_cache_mb") or 0) * 1024 * 1024,
            flash_attn=None if config.get("flash_attn", False) is None else bool(config.get("flash_attn")),
        )
        self.max_loaded = max(1, int(config.get("max_loaded_models") or 1))
        self.locator = ModelLocator(config.get("models_folder"), [self.default_model or ""])
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()  # path -> model, least recently used first
        self._sources: dict[str, ModelSource] = {}  # request name -> resolved file
        self._workers: list[LlamaWorker] = []
        self._idle: list[LlamaWorker] = []  # workers whose model was unloaded explicitly
        self._in_flight = 0  # generations running or queued on the workers (bounded by resource_manager.max_queue)
        mmproj = projector_path(config.get("mmproj"), self.locator.gguf_dir)
        limits = image_limits(config)
        self.engine, self.engine_note, self._pool = self._choose_engine(config, mmproj)
        self.projector = Projector(self.instance_name, self.default_model, mmproj, self._pool is not None,
                                   self._pool.settings.mmproj_model if self._pool is not None else None, limits)

    def _mmproj_model(self) -> Path | None:
        """The file of default_model (the model the projector belongs to), None when it cannot be resolved."""
        try:
            return self._source(self.default_model).path if self.default_model else None
        except LollmsError:
            return None

    def _choose_engine(self, config: dict[str, Any], mmproj: Path | None) -> tuple[str, str, ServerPool | None]:
        """(engine, words saying which engine runs and why, the server pool or None)."""
        wanted = str(config.get("engine") or "auto")
        if wanted == "inprocess":
            return "inprocess", "in-process llama-cpp-python (engine: inprocess)", None
        binary, where = find_llama_server(config.get("llama_server_path"))
        if binary is None:
            if wanted == "server":
                raise RuntimeError(f"engine 'server' needs llama-server: {where}")
            log.warning("llamacpp '%s': engine auto falls back to in-process llama-cpp-python, which runs concurrent "
                        "requests one after the other: %s", self.instance_name, where)
            return "inprocess", f"in-process llama-cpp-python (llama-server not available: {where})", None
        parallel = max(1, int(config.get("parallel") or 4))
        pool = ServerPool(ServerSettings(binary, parallel, self.settings, str(mmproj) if mmproj else None,
                                         self._mmproj_model()), self.max_loaded, self.instance_name)
        return "server", f"llama-server ({parallel} parallel slots, binary from {where})", pool

    def runtime_info(self) -> dict[str, Any]:
        return {"engine": self.engine, "engine_detail": self.engine_note,
                "images": self._vision_problem(None) or f"accepted with model '{self.default_model}'"}

    # ---- images (a multimodal projector on the server engine: projector.py, media.py) ------------
    def _model_file(self, name: str) -> Path:
        return self._source(name).path

    def _vision_problem(self, model_name: str | None) -> str | None:
        return self.projector.problem(model_name, self._model_file)

    def get_supported_input_modalities(self, model_name: str | None = None) -> list[str]:
        return ["image", "text"] if self._vision_problem(model_name) is None else ["text"]

    def input_hint(self, input_type: str, model_name: str | None = None) -> str | None:
        return self._vision_problem(model_name) if input_type == "image" else None

    def supports_input_role(self, input_type: str, role: str, model_name: str | None = None) -> bool:
        if input_type == "image":  # an image is part of a user turn
            return role in IMAGE_ROLES and self._vision_problem(model_name) is None
        return super().supports_input_role(input_type, role, model_name)

    def _images(self, task: GenerationTask) -> list[list[Any]]:
        """The images of each chat message (the order of ``_messages``); refused when this model takes none."""
        return self.projector.images(task, self._model_file)

    # ---- lifecycle -----------------------------------------------------------------------------
    async def startup(self) -> None:
        if importlib.util.find_spec("llama_cpp") is None:
            raise RuntimeError("llama-cpp-python is not installed (run scripts/install_llamacpp.sh)")
        await self.projector.check_file()
        if not self.default_model:
            return
        source = self._source(self.default_model)
        if self.config.get("preload_default_model") and self._pool is not None:
            await asyncio.to_thread(_check_gguf, source)
            try:
                async with self._use(source):
                    pass
            except BaseException:
                await self.unload_model(None)
                raise
        elif self.config.get("preload_default_model"):
            try:
                await self._ready(self._acquire(source))
            except BaseException:
                await self.unload_model(None)  # the instance is marked broken: end its worker thread
                raise
        else:  # loaded by the first request; a file that cannot be a model is reported now
            await asyncio.to_thread(_check_gguf, source)

    async def shutdown(self) -> None:
        await self.unload_model(None)  # server engine: stops every llama-server child

    def loaded_models(self) -> list[str]:
        return [Path(key).name for key in self._loaded_keys()]

    def _loaded_keys(self) -> list[str]:
        return self._pool.loaded_keys() if self._pool is not None else list(self._loaded)

    async def unload_model(self, model_name: str | None = None) -> bool:
        if self._pool is not None:
            if model_name is None:
                await self._pool.stop_all()
                return True
            return self._pool.unload(str(self._source(model_name).path))
        if model_name is None:
            self._loaded.clear()
            self._idle.clear()
            workers, self._workers = self._workers, []
            for w in workers:
                w.stop()
            await asyncio.gather(*(asyncio.to_thread(w.join, 10.0) for w in workers))
            return True
        model = self._loaded.pop(str(self._source(model_name).path), None)
        if model is None:
            return False
        model.worker.submit(lambda w: w.unload(model.key))
        self._idle.append(model.worker)
        return True

    async def load_model(self, model_name: str) -> bool:
        if self._pool is not None:
            async with self._use(self._source(model_name)):
                return True
        await self._ready(self._acquire(self._source(model_name)))
        return True

    @contextlib.asynccontextmanager
    async def _use(self, source: ModelSource, embedding: bool = False) -> AsyncIterator[ServerModel]:
        """Server engine: the running llama-server of ``source`` for the duration of a request."""
        assert self._pool is not None
        key = str(source.path) + ("#embedding" if embedding else "")
        try:
            async with self._pool.use(key, source.path, source.name, embedding) as model:
                yield model
        except ModelLoadError as exc:
            why = exc.message.replace(str(source.path), source.name)  # no server paths in errors
            raise BadRequestError(f"model '{echo(source.name)}' failed to load in llama.cpp: {why}") from None

    # ---- models --------------------------------------------------------------------------------
    def _source(self, name: str) -> ModelSource:
        source = self._sources.get(name)
        if source is None:
            source = self.locator.resolve(name)
            if len(self._sources) >= 256:  # spellings of names are unbounded; the files are not
                self._sources.clear()
            self._sources[name] = source
        return source

    def _name(self, model_name: str | None) -> str:
        name = model_name or self.default_model
        if not name:
            raise BadRequestError(f"no model_name given and instance '{self.instance_name}' has no default_model")
        return name

    async def check_model(self, model_name: str | None) -> None:
        """404/400 for a missing or unloadable file, before anything is unloaded to make room for it."""
        source = self._source(self._name(model_name))
        if str(source.path) not in self._loaded_keys():
            await asyncio.to_thread(self.locator.check_loadable, source)

    async def context_window(self, model_name: str | None) -> int | None:
        if self.settings.n_ctx:
            return self.settings.n_ctx
        info = await asyncio.to_thread(self.locator.describe, self._source(self._name(model_name)))
        trained = info.get("context_size")
        return trained if isinstance(trained, int) and trained > 0 else None

    async def model_problem(self) -> str | None:
        if self.default_model:
            return None  # the file is resolved at start-up (a missing one fails the instance)
        names = [str(m.get("name")) for m in await self.list_available_models()]
        if names:
            return f"no default_model set; set default_model to one of: {', '.join(names[:10])}"
        return "no default_model set and no GGUF model found; put a .gguf file in the models folder's gguf/ and set default_model"

    def _acquire(self, source: ModelSource, embedding: bool = False) -> LoadedModel:
        """The loaded model for ``source``; queues its load (on a free or the LRU worker) if needed.

        Synchronous on purpose: a job submitted right after this call runs after the load and before
        any later swap of that worker, so a request can never run on another model. An embedding copy
        (``embedding=True``) is a model of its own in the LRU.
        """
        key = str(source.path) + ("#embedding" if embedding else "")
        model = self._loaded.get(key)
        if model is None:
            replaced: ModelSource | None = None
            if self._idle:
                worker = self._idle.pop()
            elif len(self._workers) < self.max_loaded:
                worker = LlamaWorker(f"{self.instance_name}-{len(self._workers)}")
                worker.start()
                self._workers.append(worker)
            else:
                _, evicted = self._loaded.popitem(last=False)
                worker = evicted.worker
                replaced = None if evicted.key.endswith("#embedding") else evicted.source
                log.info("llamacpp '%s': unloading %s for %s (max_loaded_models=%d)",
                         self.instance_name, evicted.source.name, source.name, self.max_loaded)
            settings = dataclasses.replace(self.settings, embedding=True) if embedding else self.settings
            ready = worker.call(lambda w: w.load(key, source.path, settings))
            model = LoadedModel(key, source, worker, ready, replaced)
            self._loaded[key] = model
            ready.add_done_callback(functools.partial(self._forget_failed, model))
        self._loaded.move_to_end(key)
        return model

    def _forget_failed(self, model: LoadedModel, fut: asyncio.Future[Any]) -> None:
        failed = fut.cancelled() or fut.exception() is not None
        if failed and self._loaded.get(model.key) is model:
            del self._loaded[model.key]
            self._idle.append(model.worker)
            if model.replaced is not None and str(model.replaced.path) not in self._loaded:
                log.info("llamacpp '%s': %s failed to load; loading %s again", self.instance_name,
                         model.source.name, model.replaced.name)
                self._acquire(model.replaced)  # the model unloaded for it serves again

    async def _ready(self, model: LoadedModel) -> LoadedModel:
        try:
            await asyncio.shield(model.ready)
        except Exception as exc:  # noqa: BLE001 - any load failure is a 400 naming the model
            why = str(exc).replace(str(model.source.path), model.source.name)  # no server paths in errors
            raise BadRequestError(f"model '{echo(model.source.name)}' failed to load in llama.cpp: {why}") from None
        return model

    async def list_available_models(self) -> list[dict[str, Any]]:
        loaded = set(self._loaded_keys())
        mmproj = self.projector.path
        vision = self._pool.settings.mmproj_model if self._pool is not None and mmproj is not None else None

        def scan() -> list[dict[str, Any]]:
            out: list[dict[str, Any]] = []
            for source in self.locator.available():
                if source.path == mmproj:
                    continue  # the projector is no model of its own
                try:
                    out.append(self.locator.describe(source))
                except LollmsError as exc:
                    out.append({"name": source.name, "format": "gguf", "details": {"error": exc.message}})
                out[-1]["details"]["loaded"] = str(source.path) in loaded
                out[-1]["supports_vision"] = vision is not None and source.path == vision
            return out
        return await asyncio.to_thread(scan)

    async def get_model_info(self, model_name: str | None = None) -> dict[str, Any]:
        name = self._name(model_name)
        source = self._source(name)
        info = await asyncio.to_thread(self.locator.describe, source)
        trained = info.get("context_size")
        window = self.settings.n_ctx or trained
        return {
            "model_name": name,
            "model_type": "ttt",
            "context_size": window,
            "max_output_tokens": window,
            "supports_vision": self._vision_problem(name) is None,
            "supports_audio": False,
            "details": {
                **info["details"],
                "family": info.get("family"),
                "format": "gguf",
                "quantization_level": info.get("quantization_level"),
                "parameter_size": info.get("parameter_size"),
                "context_length": trained,
                "n_ctx": self.settings.n_ctx,
                "n_threads": self.settings.n_threads,
                "file_size": info.get("size"),
                "chat_format": self.settings.chat_format or ("model template" if info["details"].get("has_chat_template") else "llama-cpp-python default"),
                "loaded": str(source.path) in self._loaded_keys(),
                "engine": self.engine,
                **({"parallel": self._pool.settings.parallel} if self._pool is not None else {}),
            },
        }

    # ---- generation ----------------------------------------------------------------------------
    @staticmethod
    def _messages(task: GenerationTask) -> list[dict[str, Any]]:
        messages = task.chat_messages()
        if not messages:
            messages = ([{"role": "system", "content": task.system_prompt}] if task.system_prompt else []) + [
                {"role": "user", "content": task.prompt}
            ]
        return messages

    async def check_task(self, task: GenerationTask) -> None:
        """503 when too many requests wait for this instance's models; 400 when the prompt cannot fit or an
        image is refused (count, bytes, format)."""
        images = [i for per_message in self._images(task) for i in per_message]
        if images:
            await asyncio.to_thread(media.check_images, images, self.projector.limits)
        max_queue = self.resource_manager.max_queue
        running = self.max_loaded * (self._pool.settings.parallel if self._pool is not None else 1)
        if self._in_flight >= max_queue + running:
            raise QueueFullError(
                f"server busy: {self._in_flight} requests are running or waiting on llama.cpp instance "
                f"'{self.instance_name}' (resource_manager.max_queue={max_queue}); retry in {RETRY_AFTER_SECONDS}s",
                RETRY_AFTER_SECONDS,
            )
        window = await self.context_window(task.model_name)
        if window is None:
            return
        contents = [str(m.get("content") or "") for m in self._messages(task)]
        if sum(len(c.encode("utf-8")) for c in contents) + TEMPLATE_ALLOWANCE * (len(contents) + 1) < window:
            return  # a token is at least one byte: it fits for sure, no need to tokenize
        if self._pool is not None:
            async with self._use(self._source(self._name(task.model_name))) as server:
                counted = sum([len(await server.tokenize(c, add_special=False)) for c in contents])
        else:
            counted = await self._on_worker(task.model_name, lambda llm: sum(
                len(llm.tokenize(c.encode("utf-8"), add_bos=False, special=True)) for c in contents))
        if counted + 1 >= window:  # the exact count of the formatted prompt is checked again when it runs
            raise PromptTooLongError(counted + 1, window)

    def _job(self, task: GenerationTask, model: LoadedModel, stream: bool) -> ChatJob:
        self._images(task)  # the in-process engine sends no images: refused, never dropped
        messages = self._messages(task)
        sampling = sampling_arguments(task.params)
        if "seed" not in sampling:  # else llama-cpp-python derives it from the previous request's seed
            sampling["seed"] = self.settings.seed if self.settings.seed is not None else random.getrandbits(31)
        return ChatJob(model.key, messages, sampling, task.cancel, stream, setup_for(task))

    def _finished(self, task: GenerationTask, source: ModelSource, result: ChatResult) -> None:
        task.set_usage(result.prompt_tokens, result.completion_tokens)
        task.set_finish_reason(result.finish_reason)
        log.info("llamacpp '%s' request %s on %s: %d prompt (%s computed) + %d completion tokens, finish=%s",
                 self.instance_name, task.request_id, source.name, result.prompt_tokens,
                 result.prompt_evaluated, result.completion_tokens, result.finish_reason)

    # ---- generation on the server engine (server_generation.py) ----------------------------------
    async def _server_job(self, task: GenerationTask, source: ModelSource) -> ChatJob:
        return await server_generation.job_for(task, str(source.path), self._messages(task), self.projector,
                                               self._model_file, self.settings.seed)

    async def _server_generate(self, task: GenerationTask) -> BindingResult:
        source = self._source(self._name(task.model_name))
        job = await self._server_job(task, source)
        self._in_flight += 1
        try:
            async with self._use(source) as server:
                result = await server_generation.complete(server, job)
        finally:
            self._in_flight -= 1
        return self._result(task, source, job, result)

    def _result(self, task: GenerationTask, source: ModelSource, job: ChatJob, result: ChatResult) -> BindingResult:
        self._finished(task, source, result)
        meta = {"model": source.name, "llama_finish_reason": result.finish_reason,
                "prompt_tokens_evaluated": result.prompt_evaluated}
        calls = parse_calls(result.text, job.tools.tools) if job.tools else None
        if calls:
            return tool_call_output("", calls, meta)
        return {"type": "text", "data": result.text, "metadata": meta}

    async def _server_stream(self, task: GenerationTask) -> AsyncGenerator[StreamEvent, None]:
        source = self._source(self._name(task.model_name))
        job = await self._server_job(task, source)
        events = server_generation.stream(self._use(source), job, {"model": source.name},
                                          functools.partial(self._finished, task, source))
        self._in_flight += 1
        try:
            async with contextlib.aclosing(events):  # closed now, not when collected: the slot frees at once
                async for event in events:
                    yield event
        finally:
            self._in_flight -= 1

    # ---- generation on the in-process engine ---------------------------------------------------
    async def generate(self, task: GenerationTask) -> BindingResult:
        if self._pool is not None:
            return await self._server_generate(task)
        model = self._acquire(self._source(self._name(task.model_name)))
        job = self._job(task, model, stream=False)
        fut = model.worker.call(lambda w: run_chat(w, job, None))
        self._in_flight += 1
        try:
            result: ChatResult = await fut
        except asyncio.CancelledError:
            task.cancel.cancel()
            raise
        except LollmsError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported as BackendError below
            await self._ready(model)  # the load job ran first: report its failure if that was the cause
            raise BackendError(f"llama.cpp generation failed: {type(exc).__name__}: {exc}") from None
        finally:
            self._in_flight -= 1
        return self._result(task, model.source, job, result)

    async def generate_stream(self, task: GenerationTask) -> AsyncIterator[StreamEvent]:
        if self._pool is not None:
            async with contextlib.aclosing(self._server_stream(task)) as events:
                async for event in events:
                    yield event
            return
        model = self._acquire(self._source(self._name(task.model_name)))
        job = self._job(task, model, stream=True)
        tokens = start_stream(model.worker, job, lambda result: self._finished(task, model.source, result))
        meta = {"model": model.source.name}
        finished = False
        held = HeldText(job.tools)  # tools offered: text is held until it is clearly not a call
        self._in_flight += 1
        try:
            await self._ready(model)
            while not finished:
                batch = [await tokens.get()]
                while not tokens.empty():
                    batch.append(tokens.get_nowait())  # pieces that arrived together go out as one chunk
                text = ""
                for item in batch:
                    if isinstance(item, str):
                        text += held.feed(item)
                        continue
                    if text:
                        yield {"type": "chunk", "content": text, "metadata": meta}
                        text = ""
                    if item is END:
                        finished = True
                        for ev in held.events(meta):
                            yield ev
                    elif isinstance(item, LollmsError):
                        raise item
                    elif isinstance(item, BaseException):
                        raise BackendError(f"llama.cpp generation failed: {type(item).__name__}: {item}")
                if text:
                    yield {"type": "chunk", "content": text, "metadata": meta}
        finally:
            self._in_flight -= 1
            if not finished:
                task.cancel.cancel()  # client gone or error: the worker stops at the next token

    # ---- embeddings --------------------------------------------------------------------------
    async def embed(self, texts: list[str], *, model_name: str | None = None, dimensions: int | None = None,
                    credentials: dict[str, str] | None = None) -> EmbeddingResult:
        """Embeddings of a GGUF model (llama.cpp batches the texts itself); pooled and L2-normalised."""
        empty = next((i for i, text in enumerate(texts) if not text), None)
        if empty is not None:
            raise BadRequestError(f"input[{empty}] is an empty text; there is nothing to embed")
        if self._pool is not None:
            source = self._source(self._name(model_name))
            async with self._use(source, embedding=True) as server:
                raw, count = await server.embed(texts)
            vectors = [pool_tokens([normalized(row) for row in v] if v and isinstance(v[0], list) else v) for v in raw]
            return self._embedding_result(vectors, source.name, count, dimensions)
        model = self._acquire(self._source(self._name(model_name)), embedding=True)
        key = model.key

        def run(w: LlamaWorker) -> tuple[list[list[float]], int]:
            if w.llm is None or w.model_key != key:
                raise UnavailableError("the model was unloaded before the request ran; retry")
            vectors, count = w.llm.embed(texts, normalize=True, truncate=True, return_count=True)
            return [pool_tokens(v) for v in vectors], int(count)

        try:
            vectors, count = await model.worker.call(run)
        except LollmsError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported as BackendError below
            await self._ready(model)
            raise BackendError(f"llama.cpp embedding failed: {type(exc).__name__}: {exc}") from None
        return self._embedding_result(vectors, model.source.name, count, dimensions)

    @staticmethod
    def _embedding_result(vectors: list[list[float]], name: str, count: int, dimensions: int | None) -> EmbeddingResult:
        if dimensions is not None and vectors and dimensions != len(vectors[0]):
            raise FeatureNotSupportedError(
                f"model '{name}' gives {len(vectors[0])}-dimensional vectors and cannot shorten them")
        return EmbeddingResult(vectors=vectors, model=name, prompt_tokens=count)

    # ---- tokens --------------------------------------------------------------------------------
    async def _on_worker(self, model_name: str | None, fn: Any) -> Any:
        model = self._acquire(self._source(self._name(model_name)))
        key = model.key

        def checked(w: LlamaWorker) -> Any:
            if w.llm is None or w.model_key != key:
                raise UnavailableError("the model was unloaded before the request ran; retry")
            return fn(w.llm)

        fut = model.worker.call(checked)
        try:
            return await fut
        except LollmsError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported as BackendError below
            await self._ready(model)
            raise BackendError(f"llama.cpp call failed: {type(exc).__name__}: {exc}") from None

    async def tokenize(self, text: str, *, add_bos: bool = False, add_eos: bool = False,
                       model_name: str | None = None) -> list[int]:
        if self._pool is not None:
            async with self._use(self._source(self._name(model_name))) as server:
                ids = await server.tokenize(text, add_special=False)
                assert server.vocab is not None
                bos, eos = server.vocab.bos_id, server.vocab.eos_id
            if add_bos and bos >= 0 and (not ids or ids[0] != bos):
                ids.insert(0, bos)
            if add_eos and eos >= 0:
                ids.append(eos)
            return ids
        def run(llm: Any) -> list[int]:
            ids = list(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))
            bos, eos = llm.token_bos(), llm.token_eos()
            if add_bos and bos >= 0 and (not ids or ids[0] != bos):
                ids.insert(0, bos)
            if add_eos and eos >= 0:
                ids.append(eos)
            return ids
        return await self._on_worker(model_name, run)

    async def detokenize(self, tokens: list[int], *, model_name: str | None = None) -> str:
        if self._pool is not None:
            async with self._use(self._source(self._name(model_name))) as server:
                return await server.detokenize(tokens)
        def run(llm: Any) -> str:
            n_vocab = llm.n_vocab()
            bad = [t for t in tokens if not 0 <= t < n_vocab]
            if bad:
                raise BadRequestError(f"token ids {bad[:5]} are outside the model's vocabulary (0..{n_vocab - 1})")
            return bytes(llm.detokenize(tokens, special=False)).decode("utf-8", errors="replace")
        return await self._on_worker(model_name, run)
