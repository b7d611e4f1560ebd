"""hf_binding: text generation with Hugging Face Transformers causal LMs (local folders, shipped SmolLM2)."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Any, AsyncIterator, ClassVar

from lollms_server.core.bindings.base import BindingResult, GenerationTask, StreamEvent
from lollms_server.core.bindings.local_models import LocalModelBinding
from lollms_server.core.errors import BackendError, LollmsError

from .engine import LoadOptions, check_device, TextJob, TextModel, TextResult, detokenize, load_model, run_generation, thread_safe_sink, tokenize
from .models import TextModelFiles, all_models, find_model, text_models_folder


def sampling_of(params: dict[str, Any]) -> dict[str, Any]:
    """generate() keyword arguments for the request's sampling parameters (temperature 0 = greedy)."""
    temperature = params.get("temperature")
    if temperature is not None and float(temperature) == 0.0:
        return {"do_sample": False}
    out: dict[str, Any] = {"do_sample": True}
    if temperature is not None:
        out["temperature"] = float(temperature)
    if params.get("top_p") is not None:
        out["top_p"] = float(params["top_p"])
    if params.get("top_k") is not None:
        out["top_k"] = int(params["top_k"])
    if params.get("repeat_penalty") is not None:
        out["repetition_penalty"] = float(params["repeat_penalty"])
    return out


class HFBinding(LocalModelBinding[TextModelFiles, TextModel]):
    binding_type_name: ClassVar[str] = "hf_binding"
    required_packages: ClassVar[dict[str, str]] = {"torch": "torch", "transformers": "transformers"}
    install_hint: ClassVar[str] = "install the 'transformers' extra"
    cache_thread_prefix: ClassVar[str] = "transformers"

    def __init__(self, config: dict[str, Any], resource_manager: Any) -> None:
        super().__init__(config, resource_manager)
        self.model_dir: Path = text_models_folder(config.get("models_folder"))
        self.options = LoadOptions(str(config.get("device") or "auto"), str(config.get("torch_dtype") or "auto"),
                                   str(config.get("quantization") or "none"), bool(config.get("trust_remote_code")))

    def load_files(self, files: TextModelFiles) -> TextModel:
        return load_model(files, self.options)

    def check_install(self) -> None:
        if self.options.device not in ("auto", "cpu") or self.options.quantization != "none":
            check_device(self.options)  # a missing GPU or bitsandbytes shows as a load error now, not at the first request
        files = self.find_files(None)
        if files.gguf_file and importlib.util.find_spec("gguf") is None:
            raise RuntimeError("the gguf package is needed to load GGUF files with Transformers; install the 'transformers' extra")

    # ---- models --------------------------------------------------------------------------------
    def find_files(self, model_name: str | None) -> TextModelFiles:
        return find_model(self.model_dir, model_name or self.default_model)

    async def list_available_models(self) -> list[dict[str, Any]]:
        def scan() -> list[dict[str, Any]]:
            return [{"name": m.name, "format": "gguf" if m.gguf_file else "transformers", "family": None, "size": m.size(),
                     "details": {"source": m.source}} for m in all_models(self.model_dir)]

        return await asyncio.to_thread(scan)

    async def get_model_info(self, model_name: str | None = None) -> dict[str, Any]:
        files = await asyncio.to_thread(self.find_files, model_name)
        loaded = self.cache.get(files)
        context = loaded.model.context_size if loaded else None
        has_template = bool(getattr(loaded.model.tokenizer, "chat_template", None)) if loaded else None
        return {
            "model_name": files.name, "model_type": "ttt", "context_size": context,
            "max_output_tokens": self.config.get("max_output_tokens"), "supports_vision": False, "supports_audio": False,
            "details": {"format": "gguf (dequantized)" if files.gguf_file else "transformers", "source": files.source,
                        "loaded": loaded is not None, "device": loaded.model.device if loaded else self.options.device,
                        "has_chat_template": has_template, "quantization": self.options.quantization},
        }

    # ---- generation ----------------------------------------------------------------------------
    def _job(self, task: GenerationTask) -> TextJob:
        messages = task.chat_messages() or (
            ([{"role": "system", "content": task.system_prompt}] if task.system_prompt else [])
            + [{"role": "user", "content": task.prompt}])
        stop = task.params.get("stop") or []
        seed = task.params.get("seed", self.config.get("seed"))
        max_tokens = int(task.params.get("max_tokens") or self.config.get("max_output_tokens") or 512)
        return TextJob(messages, max_tokens, sampling_of(task.params), [stop] if isinstance(stop, str) else list(stop),
                       None if seed is None or seed == -1 else int(seed))

    def _finished(self, task: GenerationTask, files: TextModelFiles, result: TextResult) -> dict[str, Any]:
        task.set_usage(result.prompt_tokens, result.completion_tokens)
        return {"model": files.name, "hf_finish_reason": result.finish_reason}

    async def generate(self, task: GenerationTask) -> BindingResult:
        job = self._job(task)
        files = await asyncio.to_thread(self.find_files, task.model_name)
        async with self.cache.use(files) as loaded:
            try:
                result = await loaded.call(run_generation, loaded.model, job, task.cancel, None)
            except asyncio.CancelledError:
                task.cancel.cancel()
                raise
        return {"type": "text", "data": result.text, "metadata": self._finished(task, files, result)}

    async def generate_stream(self, task: GenerationTask) -> AsyncIterator[StreamEvent]:
        job = self._job(task)
        files = await asyncio.to_thread(self.find_files, task.model_name)
        async with self.cache.use(files) as loaded:
            pieces: asyncio.Queue[str] = asyncio.Queue()
            sink = thread_safe_sink(asyncio.get_running_loop(), pieces)
            running = asyncio.ensure_future(loaded.call(run_generation, loaded.model, job, task.cancel, sink))
            meta = {"model": files.name}
            try:
                while not (running.done() and pieces.empty()):
                    getter = asyncio.ensure_future(pieces.get())
                    await asyncio.wait({getter, running}, return_when=asyncio.FIRST_COMPLETED)
                    if getter.done():
                        text = getter.result()
                        while not pieces.empty():
                            text += pieces.get_nowait()  # pieces that arrived together go out as one chunk
                        yield {"type": "chunk", "content": text, "metadata": meta}
                    else:
                        getter.cancel()
                result = running.result()
            except (LollmsError, asyncio.CancelledError, GeneratorExit):
                raise
            except Exception as exc:  # noqa: BLE001 - reported as BackendError
                raise BackendError(f"Transformers generation failed: {type(exc).__name__}: {exc}") from None
            finally:
                if not running.done():
                    task.cancel.cancel()  # client gone: the stopping criterion ends generation at the next token
                    await asyncio.shield(asyncio.wait({running}))
        self._finished(task, files, result)  # usage lands in the final event the pipeline builds from the chunks

    # ---- tokens --------------------------------------------------------------------------------
    async def tokenize(self, text: str, *, add_bos: bool = False, add_eos: bool = False,
                       model_name: str | None = None) -> list[int]:
        files = await asyncio.to_thread(self.find_files, model_name)
        async with self.cache.use(files) as loaded:
            return await loaded.call(tokenize, loaded.model, text, add_bos, add_eos)

    async def detokenize(self, tokens: list[int], *, model_name: str | None = None) -> str:
        files = await asyncio.to_thread(self.find_files, model_name)
        async with self.cache.use(files) as loaded:
            return await loaded.call(detokenize, loaded.model, tokens)


__all__ = ["HFBinding"]
