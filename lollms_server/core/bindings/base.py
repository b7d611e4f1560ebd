"""The Binding base class every backend implements, and the per-request GenerationTask it receives.

A binding instance is shared by all requests; nothing request-specific is stored on it. The model,
parameters, conversation and cancel flag of one request travel in its ``GenerationTask``.
"""

from __future__ import annotations

import asyncio
import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator, ClassVar, Literal, Union

from lollms_server.core.bindings.parameters import GenerationParameter
from lollms_server.core.contract import InputData, OutputData
from lollms_server.core.errors import NotSupportedError
from lollms_server.core.tools import ToolCall, ToolChoice, ToolSpec

if TYPE_CHECKING:
    from lollms_server.core.embeddings import EmbeddingResult
    from lollms_server.core.resources import ResourceManager
    from lollms_server.core.services import Services

BindingResult = Union[str, dict[str, Any], list[dict[str, Any]], OutputData, list[OutputData]]
StreamEvent = dict[str, Any]
FinishReason = Literal["stop", "length", "content_filter"]

# what backends call the end of an answer -> the contract's finish reasons (anything else ends normally: stop)
_FINISH_REASONS: dict[str, FinishReason] = {
    "length": "length", "max_tokens": "length", "max_output_tokens": "length", "model_length": "length",
    "content_filter": "content_filter", "safety": "content_filter", "recitation": "content_filter",
    "blocklist": "content_filter", "prohibited_content": "content_filter", "spii": "content_filter",
}

IMAGE_MIME_TYPES: tuple[str, ...] = ("image/png", "image/jpeg", "image/webp", "image/gif", "image/bmp")
AUDIO_MIME_TYPES: tuple[str, ...] = (
    "audio/wav", "audio/x-wav", "audio/wave", "audio/mpeg", "audio/mp3", "audio/ogg", "audio/flac",
    "audio/webm", "audio/mp4", "audio/x-m4a", "audio/aac", "audio/opus",
)


class CancelToken:
    """Set when the client went away; blocking backends check it between tokens (from any thread).

    A plain flag: setting and reading one attribute is atomic in Python, and nothing waits on it (a
    threading.Event would cost a lock and a condition per request).
    """

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def cancel(self) -> None:
        self._set = True

    @property
    def cancelled(self) -> bool:
        return self._set


@dataclass
class Message:
    """One turn of a conversation. ``images`` holds image inputs attached to a user turn.

    An assistant turn may carry the ``tool_calls`` it made; a ``tool`` turn carries one call's result as
    ``content`` (text, usually JSON) and the ``tool_call_id`` it answers.
    """

    role: Literal["system", "user", "assistant", "tool"]
    content: str
    images: list[InputData] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None  # tool turns: the function name

    def openai(self) -> dict[str, Any]:
        """The OpenAI chat message dict (text only; images are the binding's business)."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [c.openai() for c in self.tool_calls]
            out["content"] = self.content or None
        if self.role == "tool":
            out["tool_call_id"] = self.tool_call_id or ""
            if self.name:
                out["name"] = self.name
        return out


@dataclass
class GenerationTask:
    """Everything one request asks of a binding. Created per request; never shared."""

    request_id: str
    generation_type: str
    model_name: str | None
    prompt: str
    system_prompt: str | None = None
    messages: list[Message] = field(default_factory=list)
    inputs: list[InputData] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    cancel: CancelToken = field(default_factory=CancelToken)
    credentials: dict[str, str] | None = field(default=None, repr=False)
    usage: dict[str, int] | None = None
    tools: list[ToolSpec] = field(default_factory=list)
    tool_choice: ToolChoice = field(default_factory=ToolChoice)
    parallel_tool_calls: bool = True
    finish_reason: FinishReason | None = None

    def set_finish_reason(self, reason: object) -> None:
        """Report why the answer ended, in the backend's own words (``length``, ``MAX_TOKENS``, ``FinishReason.STOP``…).

        Every surface reads it from here: ``finish_reason`` of /api/v1 output metadata and of /v1 choices.
        """
        if reason is None:
            return
        name = str(getattr(reason, "value", reason)).rsplit(".", 1)[-1].strip().lower()
        self.finish_reason = _FINISH_REASONS.get(name, "stop")

    def offered_tools(self) -> list[ToolSpec]:
        """The tools the model may call now: none with tool_choice none, only the named one when forced."""
        if self.tool_choice.mode == "none":
            return []
        if self.tool_choice.name:
            return [t for t in self.tools if t.name == self.tool_choice.name]
        return list(self.tools)

    def set_usage(self, prompt_tokens: int, completion_tokens: int, **details: int) -> None:
        """Report token usage once generation is known; it lands in the output metadata."""
        self.usage = {
            "prompt_tokens": int(prompt_tokens),
            "completion_tokens": int(completion_tokens),
            "total_tokens": int(prompt_tokens) + int(completion_tokens),
            **{k: int(v) for k, v in details.items()},
        }

    def inputs_of(self, type_: str, role: str | None = None) -> list[InputData]:
        return [i for i in self.inputs if i.type == type_ and (role is None or i.role == role)]

    def chat_messages(self) -> list[dict[str, Any]]:
        """OpenAI-style message dicts (text, tool calls, tool results) for backends that take a plain conversation."""
        return [m.openai() for m in self.messages]


class Binding(ABC):
    """Base class of every binding type. Subclasses declare capabilities as class attributes.

    Required: ``binding_type_name`` (equal to the card's ``type_name``), ``list_available_models`` and
    ``generate``. Streaming bindings override ``generate_stream``; others get a one-chunk fallback.
    """

    binding_type_name: ClassVar[str] = ""
    supports_streaming: ClassVar[bool] = False
    generation_types: ClassVar[frozenset[str]] = frozenset({"ttt"})
    input_modalities: ClassVar[frozenset[str]] = frozenset({"text"})
    output_modalities: ClassVar[frozenset[str]] = frozenset({"text"})
    accepted_mime_types: ClassVar[dict[str, tuple[str, ...]]] = {"image": IMAGE_MIME_TYPES, "audio": AUDIO_MIME_TYPES}
    input_roles: ClassVar[frozenset[str]] = frozenset({"user_prompt", "system_context", "assistant_reply"})
    needs_compute: ClassVar[bool] = False
    # the card's generation_parameters, set on the class when the type is registered
    generation_parameters: ClassVar[tuple[GenerationParameter, ...]] = ()
    supports_tools: ClassVar[bool] = False  # the model can be offered tools (GenerationTask.tools)

    def supports_tool_calls(self, model_name: str | None = None) -> bool:
        """Whether this model can take tools; override when it depends on the model."""
        return self.supports_tools

    def __init__(self, config: dict[str, Any], resource_manager: "ResourceManager") -> None:
        self.config = config
        self.resource_manager = resource_manager
        self.instance_name: str = str(config.get("binding_instance_name") or self.binding_type_name)
        self.default_model: str | None = config.get("default_model") or config.get("model_name") or None
        # the names spec-style bindings use (section 9); typed bindings never rely on model_name
        self.binding_instance_name: str = self.instance_name
        self.default_model_name: str | None = self.default_model
        self.model_name: str | None = None
        self._model_loaded = False
        self._load_lock = asyncio.Lock()

    @property
    def binding_name(self) -> str:
        """Older name of ``binding_instance_name``."""
        return self.instance_name

    @property
    def is_model_loaded(self) -> bool:
        return self._model_loaded

    def parameter_default(self, name: str) -> Any:
        """Default of a declared generation parameter: this instance's setting named by its
        ``instance_default``, else the card's ``default`` (None when the card does not declare it)."""
        for decl in self.generation_parameters:
            if decl.name == name:
                own = self.config.get(decl.instance_default) if decl.instance_default else None
                return decl.default if own is None else own
        return None

    def parameter(self, params: dict[str, Any], name: str) -> Any:
        """The request's value of generation parameter ``name``, else its declared default."""
        value = params.get(name)
        return self.parameter_default(name) if value is None else value

    def get_instance_config(self) -> dict[str, Any]:
        return dict(self.config)

    def get_resource_requirements(self, model_name: str | None = None) -> dict[str, Any]:
        """What one generation needs (spec): ``gpu_required`` follows ``needs_compute`` / ``requires_gpu``."""
        return {"gpu_required": bool(self.config.get("requires_gpu", self.needs_compute))}

    # ---- lifecycle -----------------------------------------------------------------------------
    async def startup(self) -> None:
        """Called once after construction (connect, check files). Raise to mark the instance broken."""

    def attach_services(self, services: "Services") -> None:
        """Called once every instance has started. Bindings that chain other instances keep ``services``
        (its ``generation`` pipeline, ``bindings`` and ``personalities``); raise to mark the instance broken."""

    async def shutdown(self) -> None:
        """Called at server stop: unload models, close clients."""
        await self.unload_model(None)

    async def health_check(self) -> tuple[bool, str]:
        return True, "ok"

    def runtime_info(self) -> dict[str, Any]:
        """Facts about how this instance runs now (e.g. which engine), shown as ``runtime`` on its entry of
        /api/v1/list_bindings; empty: nothing to show."""
        return {}

    # ---- models --------------------------------------------------------------------------------
    @abstractmethod
    async def list_available_models(self) -> list[dict[str, Any]]:
        """Models this instance can serve, as dicts with at least ``name`` (see ModelInfo)."""

    def get_supported_input_modalities(self, model_name: str | None = None) -> list[str]:
        return sorted(self.input_modalities)

    def input_hint(self, input_type: str, model_name: str | None = None) -> str | None:
        """Why this model does not take ``input_type`` and what to change, when a setting decides it (added to
        the 400 that refuses such an input); None: nothing to say."""
        return None

    def get_supported_output_modalities(self, model_name: str | None = None) -> list[str]:
        return sorted(self.output_modalities)

    async def load_model(self, model_name: str) -> bool:
        return True

    def loaded_models(self) -> list[str]:
        """Models held in memory now (metrics); bindings that load models override it."""
        return []

    async def unload_model(self, model_name: str | None = None) -> bool:
        return True

    async def get_model_info(self, model_name: str | None = None) -> dict[str, Any]:
        """Standardised model details (context_size, supports_vision…); raise NotFoundError if unknown."""
        name = model_name or self.default_model
        return {
            "model_name": name,
            "model_type": next(iter(sorted(self.generation_types)), None),
            "context_size": self.config.get("context_size"),
            "max_output_tokens": self.config.get("max_output_tokens"),
            "supports_vision": "image" in self.get_supported_input_modalities(name),
            "supports_audio": "audio" in self.get_supported_input_modalities(name),
            "details": {},
        }

    def supports_input_role(self, input_type: str, role: str, model_name: str | None = None) -> bool:
        """Whether an input of this type may carry this role (roles are declared in ``input_roles``)."""
        if input_type not in self.get_supported_input_modalities(model_name):
            return False
        return role in self.input_roles

    async def model_problem(self) -> str | None:
        """Why a request naming no model cannot be served (no usable default model), with the fix in words.

        None when the instance is ready. Called after ``startup``; an instance with a problem stays loaded
        (requests naming a model may still work) but reports the state ``no_model``.
        """
        return None

    async def check_model(self, model_name: str | None) -> None:
        """Raise NotFoundError early (before a stream starts) when ``model_name`` cannot be served.

        Cheap local checks only; remote bindings may leave this as is and report upstream errors later.
        """

    async def check_task(self, task: GenerationTask) -> None:
        """Checks of a planned task before it waits for anything (does it fit the model? is the queue full?).

        Raise BadRequestError (400) or QueueFullError (503) so that the client gets the status at once,
        also for a stream. The default checks nothing.
        """

    async def context_window(self, model_name: str | None) -> int | None:
        """Tokens the model holds in all (prompt + answer) when known; bounds ``max_tokens`` before any work."""
        value = self.config.get("context_size")
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None

    def needs_resource(self, task: GenerationTask) -> bool:
        """Whether this task takes a ResourceManager slot (card default, instance ``requires_gpu``)."""
        return bool(self.config.get("requires_gpu", self.needs_compute))

    # ---- generation ----------------------------------------------------------------------------
    @abstractmethod
    async def generate(self, task: GenerationTask) -> BindingResult:
        """Produce the whole result: text, an OutputData-like dict, or a list of them."""

    async def generate_stream(self, task: GenerationTask) -> AsyncIterator[StreamEvent]:
        """Yield StreamChunk-like dicts. Fallback for non-streaming bindings: one final event."""
        result = await self.generate(task)
        yield {"type": "final", "content": result}

    # ---- embeddings (bindings whose generation_types include "embed") --------------------------
    async def embed(self, texts: list[str], *, model_name: str | None = None, dimensions: int | None = None,
                    credentials: dict[str, str] | None = None) -> "EmbeddingResult":
        """One vector per text, in order, computed in batches. Declare "embed" in generation_types."""
        raise NotSupportedError(f"binding '{self.instance_name}' does not compute embeddings")

    # ---- tokens --------------------------------------------------------------------------------
    async def tokenize(
        self, text: str, *, add_bos: bool = False, add_eos: bool = False, model_name: str | None = None
    ) -> list[int]:
        raise NotSupportedError(f"binding '{self.instance_name}' does not support tokenization")

    async def detokenize(self, tokens: list[int], *, model_name: str | None = None) -> str:
        raise NotSupportedError(f"binding '{self.instance_name}' does not support detokenization")

    async def count_tokens(
        self, text: str, *, add_bos: bool = False, add_eos: bool = False, model_name: str | None = None
    ) -> int:
        return len(await self.tokenize(text, add_bos=add_bos, add_eos=add_eos, model_name=model_name))

    # ---- convenience for workflows -------------------------------------------------------------
    async def complete(
        self,
        prompt: str,
        *,
        system_prompt: str | None = None,
        params: dict[str, Any] | None = None,
        model_name: str | None = None,
        request_id: str = "workflow",
    ) -> str:
        """Generate text for one prompt and return the answer text (thoughts stripped)."""
        from lollms_server.core.outputs import standardize_result

        merged = dict(params or {})
        if system_prompt:
            merged["system_message"] = system_prompt
        task = task_from_spec_call(self, prompt, merged, {"request_id": request_id, "model_name": model_name}, None)
        outputs = standardize_result(await self._generate_any(task))
        return "".join(str(o.data) for o in outputs if o.type == "text")

    async def _generate_any(self, task: GenerationTask) -> Any:
        """Run ``task`` on this binding, whichever style its ``generate`` is written in."""
        if is_spec_style(type(self)):
            from lollms_server.core.bindings.spec_style import request_info_of, spec_params_of

            return await self.generate(  # type: ignore[call-arg]
                prompt=task.prompt, params=spec_params_of(task), request_info=request_info_of(task, self.instance_name),
                multimodal_data=[i for i in task.inputs if i.type != "text"])
        return await self.generate(task)

    async def _text_for(self, prompt: str, params: dict[str, Any] | None, request_info: dict[str, Any] | None,
                        multimodal_data: list[InputData] | None) -> str:
        from lollms_server.core.outputs import standardize_result

        task = task_from_spec_call(self, prompt, dict(params or {}), request_info, multimodal_data)
        return "\n".join(str(o.data) for o in standardize_result(await self._generate_any(task)) if o.type == "text")

    async def generate_structured_output(
        self, prompt: str, structure_definition: str, output_language_tag: str = "json",
        params: dict[str, Any] | None = None, request_info: dict[str, Any] | None = None,
        multimodal_data: list[InputData] | None = None,
        system_message_prefix: str = "Follow the instructions exactly.\n",
    ) -> Any:
        """Ask for one fenced block tagged ``output_language_tag`` matching ``structure_definition``;
        return its parsed JSON (tag json) or its text, or None when the answer holds no usable block."""
        from lollms_server.utils.helpers import first_block_content

        instructions = (f"{system_message_prefix}Answer with exactly one markdown code block tagged "
                        f"'{output_language_tag}' and nothing else. Its content must follow this structure:\n"
                        f"{structure_definition}")
        p = dict(params or {})
        p["system_message"] = "\n\n".join(x for x in (p.get("system_message"), instructions) if x)
        text = await self._text_for(prompt, p, request_info, multimodal_data)
        return first_block_content(text, output_language_tag)

    async def generate_and_extract_all_codes(
        self, prompt: str, params: dict[str, Any] | None = None, request_info: dict[str, Any] | None = None,
        multimodal_data: list[InputData] | None = None,
    ) -> list[dict[str, Any]]:
        """Generate, then return every fenced code block of the answer (see utils.helpers.extract_code_blocks)."""
        from lollms_server.utils.helpers import extract_code_blocks

        blocks = extract_code_blocks(await self._text_for(prompt, params, request_info, multimodal_data))
        assert isinstance(blocks, list)
        return blocks

    async def ask_yes_no(
        self, question: str, params: dict[str, Any] | None = None, request_info: dict[str, Any] | None = None,
        multimodal_data: list[InputData] | None = None,
    ) -> bool | None:
        """Ask a yes/no question; True, False, or None when the answer says neither."""
        from lollms_server.utils.helpers import yes_no_of

        p = dict(params or {})
        p["system_message"] = ('Answer the question with a JSON code block {"answer": "yes"} or {"answer": "no"} '
                               "and nothing else.")
        p.setdefault("temperature", 0.0)
        p.setdefault("max_tokens", 64)
        return yes_no_of(await self._text_for(question, p, request_info, multimodal_data))


def is_spec_style(cls: type[Binding]) -> bool:
    """Whether ``cls.generate`` takes the spec's ``(prompt, params, request_info[, multimodal_data])``."""
    names = [p for p in inspect.signature(cls.generate).parameters if p != "self"]
    return names[:3] == ["prompt", "params", "request_info"]


def task_from_spec_call(binding: Binding, prompt: str, params: dict[str, Any], request_info: dict[str, Any] | None,
                        multimodal_data: list[InputData] | None) -> GenerationTask:
    """A GenerationTask for a spec-style call: ``params['system_message']`` is the system prompt, images of
    ``multimodal_data`` go with the user turn; ``request_info`` may name the model and generation type."""
    info = dict(request_info or {})
    params = dict(params)
    system = params.pop("system_message", None)
    model = params.pop("model_name", None) or info.get("model_name") or binding.default_model
    extra = [i if isinstance(i, InputData) else InputData.model_validate(i) for i in multimodal_data or []]
    images = [i for i in extra if i.type == "image"]
    messages = ([Message("system", str(system))] if system else []) + [Message("user", prompt, images)]
    return GenerationTask(
        request_id=str(info.get("request_id") or "workflow"), generation_type=str(info.get("generation_type") or "ttt"),
        model_name=model, prompt=prompt, system_prompt=str(system) if system else None, messages=messages,
        inputs=[InputData(type="text", role="user_prompt", data=prompt), *extra], params=params,
    )
