"""Transformers causal LMs: loading, prompts through the chat template, and blocking generation.

Everything here runs on the loaded model's own worker thread. Streaming uses the library's streamer
(a ``TextStreamer`` whose finished pieces are handed to the event loop); cancelling uses a
``StoppingCriteria`` that reads the request's cancel flag before every new token.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Callable, cast

from lollms_server.core.bindings.base import CancelToken
from lollms_server.core.bindings.torch_device import pick_device, pick_dtype
from lollms_server.core.errors import BadRequestError

from .models import TextModelFiles

QUANTIZATIONS: tuple[str, ...] = ("none", "8bit", "4bit")


@dataclass
class TextModel:
    model: Any  # a transformers PreTrainedModel (causal LM)
    tokenizer: Any
    device: str
    context_size: int | None


@dataclass(frozen=True)
class LoadOptions:
    device: str
    torch_dtype: str
    quantization: str
    trust_remote_code: bool


@dataclass(frozen=True)
class TextJob:
    messages: list[dict[str, str]]
    max_new_tokens: int
    sampling: dict[str, Any]
    stop: list[str]
    seed: int | None


@dataclass(frozen=True)
class TextResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


def _quantization_config(kind: str, device: str) -> Any:
    if kind == "none":
        return None
    if device != "cuda":
        raise RuntimeError(f"quantization '{kind}' uses bitsandbytes and needs device 'cuda' (this instance runs on {device})")
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is None:
        raise RuntimeError(f"quantization '{kind}' needs the bitsandbytes package (pip install bitsandbytes)")
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_8bit=True) if kind == "8bit" else BitsAndBytesConfig(load_in_4bit=True)


def check_device(options: LoadOptions) -> str:
    """The device this instance will use; raises when it is absent or cannot run the quantization asked for."""
    device = pick_device(options.device)
    _quantization_config(options.quantization, device)
    return device


def load_model(files: TextModelFiles, options: LoadOptions) -> TextModel:
    """From local files only (never the hub); GGUF files are dequantized into a PyTorch model."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    device = pick_device(options.device)
    common: dict[str, Any] = {"local_files_only": True, "trust_remote_code": options.trust_remote_code}
    if files.gguf_file:
        common["gguf_file"] = files.gguf_file
    tokenizer = AutoTokenizer.from_pretrained(str(files.folder), **common)
    quant = _quantization_config(options.quantization, device)
    kwargs: dict[str, Any] = {**common, "dtype": pick_dtype(options.torch_dtype, device)}
    if quant is not None:
        kwargs.update(quantization_config=quant, device_map=device)
    model = AutoModelForCausalLM.from_pretrained(str(files.folder), **kwargs)
    if quant is None:
        cast(Any, model).to(device)
    model.eval()
    context = getattr(model.config, "max_position_embeddings", None)
    return TextModel(model, tokenizer, device, int(context) if context else None)


def prompt_ids(loaded: TextModel, messages: list[dict[str, str]]) -> Any:
    """Token ids of the conversation: the model's chat template, or plain ``role: text`` lines without one."""
    tok = loaded.tokenizer
    if getattr(tok, "chat_template", None):
        ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        return ids["input_ids"]
    text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"
    return tok(text, return_tensors="pt")["input_ids"]


def _stopping(cancel: CancelToken) -> Any:
    from transformers import StoppingCriteria, StoppingCriteriaList

    class StopOnCancel(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
            return cancel.cancelled

    return StoppingCriteriaList([StopOnCancel()])


def _cut_at_stop(text: str, stop: list[str]) -> tuple[str, bool]:
    cuts = [i for i in (text.find(s) for s in stop) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


def run_generation(loaded: TextModel, job: TextJob, cancel: CancelToken, on_text: Callable[[str], None] | None) -> TextResult:
    """Blocking generation. ``on_text`` (streaming) receives each finished piece of text as it is decoded."""
    import torch
    from transformers import TextStreamer

    input_ids = prompt_ids(loaded, job.messages).to(loaded.device)
    if loaded.context_size and input_ids.shape[1] >= loaded.context_size:
        raise BadRequestError(f"the prompt is {input_ids.shape[1]} tokens; the model's context is {loaded.context_size}")
    streamer = None
    if on_text is not None:
        class PieceStreamer(TextStreamer):
            def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
                if text:
                    on_text(text)  # type: ignore[misc]

        streamer = PieceStreamer(loaded.tokenizer, skip_prompt=True, skip_special_tokens=True)
    if job.seed is not None:
        torch.manual_seed(job.seed)
    tok = loaded.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    extra: dict[str, Any] = {"stop_strings": job.stop, "tokenizer": tok} if job.stop else {}
    with torch.inference_mode():
        out = loaded.model.generate(
            input_ids=input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=job.max_new_tokens,
            stopping_criteria=_stopping(cancel), streamer=streamer, pad_token_id=pad, **job.sampling, **extra)
    new = out[0, input_ids.shape[1]:]
    text, stopped = _cut_at_stop(tok.decode(new, skip_special_tokens=True), job.stop)
    ended = bool(len(new)) and tok.eos_token_id is not None and int(new[-1]) == tok.eos_token_id
    reason = "cancelled" if cancel.cancelled else ("stop" if ended or stopped else ("length" if len(new) >= job.max_new_tokens else "stop"))
    return TextResult(text, int(input_ids.shape[1]), int(len(new)), reason)


def thread_safe_sink(loop: asyncio.AbstractEventLoop, queue: "asyncio.Queue[str]") -> Callable[[str], None]:
    """A callback for the worker thread that hands text pieces to ``queue`` on the event loop."""
    def put(text: str) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, text)

    return put


def tokenize(loaded: TextModel, text: str, add_bos: bool, add_eos: bool) -> list[int]:
    tok = loaded.tokenizer
    ids = list(tok.encode(text, add_special_tokens=False))
    if add_bos and tok.bos_token_id is not None and (not ids or ids[0] != tok.bos_token_id):
        ids.insert(0, int(tok.bos_token_id))
    if add_eos and tok.eos_token_id is not None:
        ids.append(int(tok.eos_token_id))
    return [int(i) for i in ids]


def detokenize(loaded: TextModel, tokens: list[int]) -> str:
    size = len(loaded.tokenizer)
    bad = [t for t in tokens if not 0 <= t < size]
    if bad:
        raise BadRequestError(f"token ids {bad[:5]} are outside the model's vocabulary (0..{size - 1})")
    return str(loaded.tokenizer.decode(tokens, skip_special_tokens=False))
