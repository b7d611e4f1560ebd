"""The generation pipeline: resolve personality, binding and model; run or stream; standardise outputs."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, AsyncGenerator, AsyncIterator, cast

from lollms_server.core.contract import GenerateRequest, InputData, OutputData, StreamChunk, updated_output
from lollms_server.core.bindings.base import Binding, GenerationTask
from lollms_server.core.bindings.parameters import check_parameters
from lollms_server.core.config_schema import MODALITIES
from lollms_server.core.errors import BackendError, BadRequestError, LollmsError, NotFoundError, NotSupportedError, echo
from lollms_server.core.inputs import build_conversation, check_inputs_for, normalise_binary
from lollms_server.core.request_limits import bounded_max_tokens, check_item_count
from lollms_server.core.outputs import standardize_result
from lollms_server.core.unicode_text import valid_text, valid_value
from lollms_server.core.params import merge_parameters
from lollms_server.core.bindings.manager import BindingManager
from lollms_server.core.config import ServerConfig
from lollms_server.core.filters import ActiveFilter, FilterFailedError, FilterManager, run_flush, run_inlet, run_outlet, run_stream
from lollms_server.core.functions import FunctionManager
from lollms_server.core.personalities import Personality, PersonalityManager
from lollms_server.core.resources import ResourceManager
from lollms_server.core.secrets import REDACTOR, StreamMasker
from lollms_server.core.telemetry import Caller, Telemetry, Trace, error_kind
from lollms_server.core.thoughts import ThinkSplitter
from lollms_server.core.tool_loop import ToolPlan, check_tool_support, plan_tools, run_tool_loop
from lollms_server.core.tools import CallRecorder

from lollms_server.core.workflows import (
    WorkflowContext,
    WorkflowServices,
    build_context,
    call_workflow,
    is_event_stream,
    workflow_events,
)

log = logging.getLogger("lollms_server.generation")
_NO_SLOT: contextlib.AbstractAsyncContextManager[None] = contextlib.nullcontext()  # reusable: holds nothing


@dataclass
class GenerationPlan:
    request_id: str
    task: GenerationTask
    binding: Binding | None
    binding_name: str | None
    personality: Personality | None
    stream: bool
    tools: ToolPlan | None = None
    caller: Caller = Caller()
    trace: Trace | None = None
    filters: list[ActiveFilter] = field(default_factory=list)
    slot_timeout: float | None = None  # how long to wait for a compute slot (None: resource_manager.queue_timeout)

    @property
    def runs_tool_loop(self) -> bool:
        return bool(self.tools and self.tools.server_side and self.binding is not None and not self.workflow_driven)

    @property
    def workflow_driven(self) -> bool:
        return bool(self.personality and self.personality.workflow)

    def open_trace(self, telemetry: Telemetry) -> Trace:
        self.trace = telemetry.trace(
            self.caller, self.request_id, self.task.generation_type, self.binding_name, self.task.model_name,
            self.personality.folder_name if self.personality else None, self.stream,
        )
        return self.trace


def _as_lollms_error(exc: BaseException) -> BaseException:
    """NotImplementedError from a binding or workflow means 'not supported' (501)."""
    if isinstance(exc, NotImplementedError):
        return NotSupportedError(REDACTOR.redact(f"not implemented: {exc}" if str(exc) else "not implemented"))
    return exc


def _error_meta(exc: BaseException) -> dict[str, Any]:
    """HTTP status (and Retry-After) an error maps to, carried by error events so a surface can answer with them."""
    exc = _as_lollms_error(exc)
    meta: dict[str, Any] = {"status_code": exc.status_code if isinstance(exc, LollmsError) else 500}
    retry = (exc.headers or {}).get("Retry-After") if isinstance(exc, LollmsError) else None
    if retry:
        meta["retry_after"] = int(retry)
    return meta


def _masked(out: OutputData) -> dict[str, Any]:
    """The fields to update so that generated text carries no secret the server knows (a model may repeat one
    it was shown)."""
    update: dict[str, Any] = {}
    if isinstance(out.data, str) and out.type in ("text", "json", "error", "info"):
        update["data"] = REDACTOR.mask_secrets(out.data)
    if out.thoughts:
        update["thoughts"] = REDACTOR.mask_secrets(out.thoughts)
    return update


def _error_message(exc: BaseException) -> str:
    exc = _as_lollms_error(exc)
    if isinstance(exc, LollmsError):
        return REDACTOR.redact(exc.message)
    return REDACTOR.redact(f"generation failed: {type(exc).__name__}: {exc}")


class GenerationService:
    """Plans a GenerateRequest (every input error surfaces here), then runs or streams it."""

    def __init__(self, config: ServerConfig, bindings: BindingManager, personalities: PersonalityManager,
                 functions: FunctionManager, resources: ResourceManager, telemetry: Telemetry | None = None,
                 filters: FilterManager | None = None) -> None:
        self.config = config
        self.filters = filters
        self.telemetry = telemetry or Telemetry()
        self.bindings = bindings
        self.personalities = personalities
        self.functions = functions
        self.resources = resources

    # ---- planning (all input errors surface here, before any response starts) --------------------
    async def plan(self, req: GenerateRequest, *, credentials: dict[str, str] | None = None,
                   caller: Caller | None = None, admit: bool = True, inlet: bool = True) -> GenerationPlan:
        """``admit=False``: the request was already counted against its key's limits (a job planned again where it runs).
        ``inlet=False``: plan without running the filters' inlets (a job checked where it is created and planned
        again, inlets included, where it runs: each inlet runs once per generation)."""
        caller = caller or Caller()
        if admit:
            await self.telemetry.admit(caller, req.binding_name)
        gen_type = (req.generation_type or "ttt").lower()
        if gen_type not in MODALITIES:
            raise BadRequestError(f"generation_type '{echo(req.generation_type)}' is unknown; use one of {', '.join(MODALITIES)}")
        limits = self.config.limits
        items = list(req.input_data)
        if req.text_prompt:
            items.append(InputData(type="text", role="user_prompt", data=req.text_prompt))
        if not items:
            raise BadRequestError("input_data must contain at least one item (e.g. a text with role user_prompt)")
        check_item_count(len(items), limits)
        items = normalise_binary(items, limits)
        personality = self.personalities.get(req.personality) if req.personality else None
        binding_name, binding = self._resolve_binding(req, gen_type, personality)
        model_name = req.model_name or (personality.config.model_name if personality else None)
        if binding is not None:
            model_name = model_name or binding.default_model
            if not (personality and personality.is_scripted):
                if gen_type not in binding.generation_types:
                    raise NotSupportedError(
                        f"binding '{binding_name}' cannot do '{gen_type}' (it does: {', '.join(sorted(binding.generation_types))})"
                    )
                check_inputs_for(binding, items, model_name)
                if req.parameters:  # (no parameter: nothing to check against the declarations)
                    check_parameters(self.bindings.declared_parameters(binding_name or ""), req.parameters, gen_type)
                await binding.check_model(model_name)
        defaults = self.config.defaults
        base = {"max_tokens": defaults.get("default_max_output_tokens")} if gen_type == "ttt" else {}
        params = merge_parameters(base, personality.params if personality else None, req.parameters)
        if binding is not None and gen_type == "ttt" and "max_tokens" in params:
            window = await binding.context_window(model_name)
            params["max_tokens"] = bounded_max_tokens((req.parameters or {}).get("max_tokens"), params["max_tokens"], window, model_name)
        tools = plan_tools(req, personality, self.functions, params)
        if binding is not None and not (personality and personality.is_scripted):
            check_tool_support(binding, binding_name, model_name, tools)
        messages, system, prompt = build_conversation(items, personality.conditioning if personality else None)
        request_id = caller.request_id or uuid.uuid4().hex[:16]
        task = GenerationTask(
            request_id=request_id, generation_type=gen_type, model_name=model_name, prompt=prompt,
            system_prompt=system, messages=messages, inputs=items, params=params, credentials=credentials,
            tools=tools.tools if tools.choice.mode != "none" or tools.server_side else [],
            tool_choice=tools.choice, parallel_tool_calls=tools.parallel,
        )
        if binding is not None:
            if binding.needs_resource(task) and req.stream:
                # a full queue answers 503 before the stream starts (a plain request hears it from the slot itself)
                await self.resources.check_admission()
            if not (personality and personality.is_scripted):
                if type(binding).check_task is not Binding.check_task:  # (the base checks nothing: no coroutine for it)
                    await binding.check_task(task)
        plan = GenerationPlan(request_id, task, binding, binding_name, personality, req.stream, tools, caller)
        if inlet:
            await self._inlet(plan)
        return plan

    async def _inlet(self, plan: GenerationPlan) -> None:
        """Pick the filters of this request and run their inlets (a refusal or failure answers before any work)."""
        if self.filters is None or not self.filters.filters:
            return
        personality = plan.personality.folder_name if plan.personality else None
        plan.filters = self.filters.for_request(plan.caller, plan.request_id, personality, plan.binding_name)
        if plan.filters:
            await run_inlet(plan.filters, plan.task, {
                "generation_type": plan.task.generation_type, "model": plan.task.model_name,
                "binding": plan.binding_name, "personality": personality,
            })

    async def _outlet(self, plan: GenerationPlan, outputs: list[OutputData]) -> list[OutputData]:
        if not plan.filters:
            return outputs
        changed = await run_outlet(plan.filters, [o.model_dump() for o in outputs])
        try:
            return [OutputData.model_validate(o) for o in changed]
        except Exception as exc:
            raise FilterFailedError(f"a filter's outlet returned invalid outputs: {exc}") from exc

    def _resolve_binding(
        self, req: GenerateRequest, gen_type: str, personality: Personality | None
    ) -> tuple[str | None, Binding | None]:
        name = req.binding_name or (personality.config.binding_name if personality else None) or self.config.default_binding(gen_type)
        scripted = bool(personality and personality.is_scripted)
        if not name:
            if scripted:
                return None, None
            raise BadRequestError(
                f"no binding_name given and no default '{gen_type}_binding' configured in the defaults section"
            )
        try:
            return name, self.bindings.get(name)
        except NotFoundError:
            if scripted and not req.binding_name:
                return name, None
            raise

    # ---- running -------------------------------------------------------------------------------
    def _slot(self, plan: GenerationPlan) -> contextlib.AbstractAsyncContextManager[None]:
        """A compute slot for the duration of the block, when the binding needs one (else nothing to hold)."""
        if plan.binding is not None and plan.binding.needs_resource(plan.task):
            return self.resources.acquire_gpu_resource(f"{plan.binding_name}:{plan.request_id}", plan.slot_timeout)
        return _NO_SLOT

    def _workflow_context(self, plan: GenerationPlan) -> WorkflowContext:
        services = WorkflowServices(self.config, self.bindings, self.functions, self.resources)
        return build_context(services, plan.task, plan.binding, plan.binding_name, plan.personality)

    def _finish(self, plan: GenerationPlan, outputs: list[OutputData], started: float, finish_reason: str,
                recorder: CallRecorder | None = None) -> list[OutputData]:
        meta_common: dict[str, Any] = {
            "binding": plan.binding_name,
            "model": plan.task.model_name,
            "request_id": plan.request_id,
            "finish_reason": finish_reason,
            "duration": round(time.perf_counter() - started, 4),
        }
        recorder = recorder or CallRecorder()
        for out in outputs:
            recorder.add_calls((out.metadata or {}).get("tool_calls") or [])
        return self._finish_with_calls(plan, outputs, meta_common, recorder)

    def _finish_with_calls(self, plan: GenerationPlan, outputs: list[OutputData], meta_common: dict[str, Any],
                           recorder: CallRecorder) -> list[OutputData]:
        """Metadata of every output; the first text output carries the tool_calls record."""
        records = recorder.records()
        if records and not any(o.type == "text" for o in outputs):
            outputs.insert(0, OutputData(type="text", data=""))
        if records and meta_common.get("finish_reason") == "stop" and any(
                r["result"] is None and r["error"] is None for r in records):
            meta_common = {**meta_common, "finish_reason": "tool_calls"}
        first_text = next((i for i, o in enumerate(outputs) if o.type == "text"), None) if records else None
        usage = plan.task.usage
        for i, out in enumerate(outputs):
            own = out.metadata
            meta = {**meta_common, **own} if own else dict(meta_common)
            if own and "tool_calls" in own:
                del meta["tool_calls"]  # (the binding's own record is replaced by the recorder's, below)
            if i == first_text:
                meta["tool_calls"] = records
            if usage and i == 0:
                meta.setdefault("usage", usage)
            update = _masked(out)
            update["metadata"] = meta
            outputs[i] = updated_output(out, update)
        return outputs

    async def run(self, plan: GenerationPlan) -> list[OutputData]:
        trace = plan.open_trace(self.telemetry)
        try:
            outputs = await self._run(plan)
        except asyncio.CancelledError:
            trace.end("cancelled", plan.task)
            raise
        except Exception as exc:
            trace.end("error", plan.task, error=error_kind(exc))
            raise
        trace.end("ok", plan.task, outputs)
        return outputs

    async def _run(self, plan: GenerationPlan) -> list[OutputData]:
        started = time.perf_counter()
        if plan.runs_tool_loop:
            try:
                async with self._slot(plan):
                    return await self._collect_stream_result(plan, self._source(plan), started)
            finally:
                plan.task.cancel.cancel()
        try:
            async with self._slot(plan):
                if plan.personality and plan.personality.workflow:
                    result = await call_workflow(plan.personality, plan.task, self._workflow_context(plan))
                    if is_event_stream(result):
                        return await self._collect_stream_result(plan, result, started)
                elif plan.binding is not None:
                    result = await plan.binding.generate(plan.task)
                else:  # pragma: no cover - plan() guarantees a binding for non-scripted requests
                    raise BadRequestError("no binding to run")
        except LollmsError:
            raise
        except NotImplementedError as exc:
            raise _as_lollms_error(exc) from exc
        except Exception as exc:  # a backend or workflow bug becomes a clear 500, never a crash
            log.warning("request %s failed: %s", plan.request_id, _error_message(exc))
            raise BackendError(_error_message(exc)) from exc
        finally:
            plan.task.cancel.cancel()
        outputs = standardize_result(result)
        if plan.filters:  # (no filter: no outlet to await)
            outputs = await self._outlet(plan, outputs)
        return self._finish(plan, outputs, started, plan.task.finish_reason or "stop")

    async def _collect_stream_result(self, plan: GenerationPlan, events: AsyncIterator[Any], started: float) -> list[OutputData]:
        final: list[OutputData] = []
        async for chunk in self._normalise(plan, events, started):
            if chunk.type == "final":
                final = [OutputData.model_validate(o) for o in chunk.content]
            elif chunk.type == "error":
                raise_from = chunk.content
                raise BackendError(str(raise_from))
        return final

    def _source(self, plan: GenerationPlan) -> AsyncIterator[Any]:
        if (plan.binding is not None and not (plan.personality and plan.personality.workflow) and not plan.runs_tool_loop
                and inspect.isasyncgenfunction(plan.binding.generate_stream)):
            # the binding's own generator (calling it runs nothing yet): one wrapper less on every event
            return cast(AsyncIterator[Any], plan.binding.generate_stream(plan.task))

        async def gen() -> AsyncIterator[Any]:
            if plan.personality and plan.personality.workflow:
                async for ev in workflow_events(plan.personality, plan.task, self._workflow_context(plan)):
                    yield ev
            elif plan.runs_tool_loop:
                assert plan.binding is not None and plan.tools is not None
                async for ev in run_tool_loop(plan.binding, plan.task, plan.tools, self.functions):
                    yield ev
            elif plan.binding is not None:
                async for ev in plan.binding.generate_stream(plan.task):
                    yield ev
        return gen()

    async def stream(self, plan: GenerationPlan) -> AsyncIterator[StreamChunk]:
        """StreamChunks for a plan; always ends with exactly one ``final`` (after an ``error`` if one occurred)."""
        started = time.perf_counter()
        trace = plan.open_trace(self.telemetry)
        try:
            normalised = self._normalise(plan, self._source(plan), started, end_trace=True)
            # a consumer that stops at the final event closes this generator: the inner one is closed here, not
            # left to the event loop's async-generator finalizer (a task per stream)
            async with self._slot(plan), contextlib.aclosing(normalised) as chunks:
                async for chunk in chunks:
                    yield chunk
        except asyncio.CancelledError:
            plan.task.cancel.cancel()
            raise
        except Exception as exc:
            message = _error_message(exc)
            log.warning("request %s failed before streaming: %s", plan.request_id, message)
            trace.end("error", plan.task, error=error_kind(exc))
            yield StreamChunk(type="error", content=message, metadata=_error_meta(exc))
            err = OutputData(type="error", data=message, metadata=_error_meta(exc))
            yield StreamChunk(type="final", content=[o.model_dump() for o in self._finish(plan, [err], started, "error")])
        finally:
            plan.task.cancel.cancel()
            trace.end("cancelled", plan.task)  # no-op when the stream already ended

    async def _stream_filters(self, plan: GenerationPlan, answer: str, thought: str) -> tuple[str, str]:
        event = await run_stream(plan.filters, {"type": "chunk", "content": answer, "thoughts": thought or None})
        if event is None:
            return "", ""
        return str(event.get("content") or ""), str(event.get("thoughts") or "")

    async def _normalise(self, plan: GenerationPlan, events: AsyncIterator[Any], started: float,
                         *, end_trace: bool = False) -> AsyncGenerator[StreamChunk, None]:
        splitter = ThinkSplitter()
        recorder = CallRecorder()
        answer_mask, thought_mask = StreamMasker(REDACTOR), StreamMasker(REDACTOR)
        text_parts: list[str] = []
        thought_parts: list[str] = []
        extra_outputs: list[OutputData] = []
        final_outputs: list[OutputData] | None = None
        error: str | None = None
        error_event: StreamChunk | None = None  # sent after the held-back tail, just before the final
        try:
            async for ev in events:
                if isinstance(ev, StreamChunk):
                    ev = ev.model_dump()
                if isinstance(ev, str):
                    ev = {"type": "chunk", "content": ev}
                etype = ev.get("type", "chunk")
                if etype == "chunk" and ev.get("content") is None:
                    ev = {**ev, "content": ""}  # a thoughts-only chunk (spec-era bindings send content None)
                if etype == "chunk" and isinstance(ev.get("content"), str):
                    answer, thought = splitter.feed(valid_text(ev["content"]))
                    if ev.get("thoughts"):
                        thought += valid_text(str(ev["thoughts"]))
                    answer, thought = answer_mask.feed(answer), thought_mask.feed(thought)
                    if answer or thought:
                        if plan.filters:
                            answer, thought = await self._stream_filters(plan, answer, thought)
                            if not (answer or thought):
                                continue
                        if plan.trace is not None:
                            plan.trace.first_token()
                        text_parts.append(answer)
                        thought_parts.append(thought)
                        meta = valid_value(ev.get("metadata") or {})
                        if isinstance(meta, dict):  # per-token path: the fields are known to be valid, skip validation
                            yield StreamChunk.model_construct(type="chunk", content=answer, thoughts=thought or None, metadata=meta)
                        else:
                            yield StreamChunk(type="chunk", content=answer, thoughts=thought or None, metadata=meta)
                elif etype == "chunk":
                    piece = standardize_result(ev.get("content"))
                    extra_outputs.extend(piece)
                    yield StreamChunk(type="chunk", content=[p.model_dump() for p in piece], metadata=ev.get("metadata") or {})
                elif etype == "final":
                    final_outputs = standardize_result(ev.get("content"))
                elif etype == "error":
                    error = REDACTOR.redact(valid_text(str(ev.get("content"))))
                    error_event = StreamChunk(type="error", content=error, metadata=valid_value(ev.get("metadata") or {}))
                    break
                elif etype == "function_call":
                    call = valid_value(ev.get("content"))
                    recorder.add(call)
                    yield StreamChunk(type=etype, content=call, metadata=valid_value(ev.get("metadata") or {}))
                elif etype == "info":
                    yield StreamChunk(type=etype, content=valid_value(ev.get("content")), metadata=valid_value(ev.get("metadata") or {}))
                else:
                    raise LollmsError(f"stream event of unknown type {etype!r}")
        except (asyncio.CancelledError, GeneratorExit):
            plan.task.cancel.cancel()
            raise
        except Exception as exc:
            error = _error_message(exc)
            log.warning("request %s failed mid-stream: %s", plan.request_id, error)
            error_event = StreamChunk(type="error", content=error, metadata=_error_meta(exc))
        finally:
            with contextlib.suppress(Exception):
                await events.aclose()  # type: ignore[attr-defined]
        tail_answer, tail_thought = splitter.flush()
        tail_answer = answer_mask.feed(tail_answer) + answer_mask.flush()
        tail_thought = thought_mask.feed(tail_thought) + thought_mask.flush()
        if plan.filters and error is None:
            try:
                if tail_answer or tail_thought:
                    tail_answer, tail_thought = await self._stream_filters(plan, tail_answer, tail_thought)
                tail_answer += await run_flush(plan.filters)
            except LollmsError as exc:
                error = REDACTOR.redact(exc.message)
                yield StreamChunk(type="error", content=error)
            else:
                if tail_answer:
                    yield StreamChunk(type="chunk", content=tail_answer)
        elif tail_answer or tail_thought:  # what was held back (a possible tag or secret start) is streamed too
            yield StreamChunk(type="chunk", content=tail_answer, thoughts=tail_thought or None)
        if error_event is not None:  # the stream's error is the last event before the final, after all text
            yield error_event
        text_parts.append(tail_answer)
        thought_parts.append(tail_thought)
        if final_outputs is None:
            final_outputs = []
            text = "".join(text_parts)
            thoughts = "".join(thought_parts).strip() or None
            if text or thoughts or not extra_outputs:
                final_outputs.append(OutputData(type="text", data=text, thoughts=thoughts))
            final_outputs.extend(extra_outputs)
        if plan.filters and error is None:
            try:
                final_outputs = await self._outlet(plan, final_outputs)
            except LollmsError as exc:
                error = REDACTOR.redact(exc.message)
                yield StreamChunk(type="error", content=error)
        if error is not None:
            final_outputs.append(OutputData(type="error", data=error))
        reason = "error" if error else ("cancelled" if plan.task.cancel.cancelled else (plan.task.finish_reason or "stop"))
        outputs = self._finish(plan, final_outputs, started, reason, recorder)
        if plan.trace is not None and end_trace:  # before the final event: a client may close right after it
            plan.trace.end("error" if error else "ok", plan.task, outputs, error="stream_error" if error else None)
        yield StreamChunk(
            type="final", content=[o.model_dump() for o in outputs],
            metadata={"usage": plan.task.usage} if plan.task.usage else {},
        )
