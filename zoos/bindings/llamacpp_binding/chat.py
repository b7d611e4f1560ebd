"""Generation jobs: request parameters -> llama.cpp sampling arguments, and the code run on the worker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lollms_server.core.bindings.base import CancelToken
from lollms_server.core.errors import BadRequestError

from .tool_calls import ToolSetup, plain_history
from .worker import LlamaWorker, RunState, post

# request parameter -> (llama argument, type); repeat_penalty defaults to 1.0 like the library
_FLOAT_PARAMS: dict[str, str] = {
    "temperature": "temperature", "top_p": "top_p", "min_p": "min_p", "typical_p": "typical_p",
    "repeat_penalty": "repeat_penalty", "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}
_INT_PARAMS: dict[str, str] = {"top_k": "top_k", "seed": "seed", "max_tokens": "max_tokens"}


def sampling_arguments(params: dict[str, Any]) -> dict[str, Any]:
    """Map generation parameters to ``create_chat_completion`` keywords; bad values -> BadRequestError."""
    out: dict[str, Any] = {"repeat_penalty": 1.0}
    for key, arg in _FLOAT_PARAMS.items():
        value = params.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadRequestError(f"parameter '{key}' must be a number, got {value!r}")
        out[arg] = float(value)
    for key, arg in _INT_PARAMS.items():
        value = params.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadRequestError(f"parameter '{key}' must be an integer, got {value!r}")
        out[arg] = value
    if "max_tokens" in out and out["max_tokens"] < 1:
        raise BadRequestError("parameter 'max_tokens' must be at least 1")
    if "temperature" in out and out["temperature"] < 0:
        raise BadRequestError("parameter 'temperature' must be >= 0")
    stop = params.get("stop", params.get("stop_sequences"))
    if stop is not None:
        if isinstance(stop, str):
            stop = [stop]
        if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
            raise BadRequestError("parameter 'stop' must be a string or a list of non-empty strings")
        out["stop"] = stop
    response_format = _response_format(params.get("response_format"))
    if response_format is not None:
        out["response_format"] = response_format
    return out


def _response_format(value: Any) -> dict[str, Any] | None:
    """OpenAI-style response_format -> llama-cpp-python's grammar-constrained JSON output."""
    if value is None:
        return None
    if isinstance(value, str):
        value = {"type": value}
    if not isinstance(value, dict):
        raise BadRequestError("parameter 'response_format' must be an object such as {\"type\": \"json_object\"}")
    kind = value.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        schema = value.get("schema")
    elif kind == "json_schema":
        spec = value.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
    else:
        raise BadRequestError(f"response_format type {kind!r} is not supported (use text, json_object or json_schema)")
    if schema is not None and not isinstance(schema, dict):
        raise BadRequestError("response_format schema must be a JSON schema object")
    return {"type": "json_object", **({"schema": schema} if schema else {})}


@dataclass
class ChatJob:
    """One generation request as the worker thread sees it."""

    model_key: str
    messages: list[dict[str, Any]]
    sampling: dict[str, Any]
    cancel: CancelToken
    stream: bool
    tools: ToolSetup | None = None


@dataclass
class ChatResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    prompt_evaluated: int | None = None  # prompt tokens computed, not restored from the KV cache


END = object()  # marks the end of a stream in the token queue


def _check_model(worker: LlamaWorker, job: ChatJob) -> Any:
    if worker.llm is None or worker.model_key != job.model_key:
        raise RuntimeError(f"model '{job.model_key}' is not loaded on this worker (it failed to load or was swapped out)")
    return worker.llm


def run_chat(worker: LlamaWorker, job: ChatJob, emit: Callable[[str], None] | None) -> ChatResult:
    """On the worker thread: generate, streaming pieces through ``emit`` when given; stops on cancel."""
    if job.cancel.cancelled:
        return ChatResult("", 0, 0, "cancelled")
    llm = _check_model(worker, job)
    state = RunState(job.cancel)
    llm.run_state = state
    parts: list[str] = []
    finish = "stop"
    messages, sampling = job.messages, job.sampling
    if job.tools is not None:  # tools replace response_format: the grammar is the tools' one
        messages, extra, _ = job.tools.prepare(llm, messages)
        sampling = {**{k: v for k, v in sampling.items() if k != "response_format"}, **extra}
    else:
        messages = plain_history(messages)
    try:
        if emit is None and not job.stream:
            resp = llm.create_chat_completion(messages=messages, stream=False, **sampling)
            choice = resp["choices"][0]
            parts.append(choice["message"].get("content") or "")
            finish = choice.get("finish_reason") or "stop"
        else:
            chunks = llm.create_chat_completion(messages=messages, stream=True, **sampling)
            try:
                for chunk in chunks:
                    choice = chunk["choices"][0]
                    piece = choice["delta"].get("content")
                    if piece:
                        parts.append(piece)
                        if emit is not None:
                            emit(piece)
                    if choice.get("finish_reason"):
                        finish = choice["finish_reason"]
                    if job.cancel.cancelled:
                        state.cancelled = True
                        break
            finally:
                chunks.close()
    finally:
        llm.run_state = None
    if state.cancelled:
        finish = "cancelled"
    return ChatResult("".join(parts), state.prompt_tokens, state.completion_tokens, finish, state.prompt_evaluated)


def start_stream(
    worker: LlamaWorker, job: ChatJob, on_result: Callable[[ChatResult], None]
) -> asyncio.Queue[Any]:
    """Queue the job; pieces (str), then an exception if it failed, then END arrive in the returned queue.

    ``on_result`` runs on the event loop when generation ends, also when nobody reads the queue any more
    (client gone), and before END is delivered.
    """
    loop = asyncio.get_running_loop()
    tokens: asyncio.Queue[Any] = asyncio.Queue()
    put = tokens.put_nowait

    def emit(piece: str) -> None:
        if not post(loop, put, piece):
            job.cancel.cancel()

    def run(w: LlamaWorker) -> None:
        try:
            post(loop, on_result, run_chat(w, job, emit))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            post(loop, put, exc)
        post(loop, put, END)

    worker.submit(run)
    return tokens
