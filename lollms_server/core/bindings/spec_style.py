"""Bindings written in the specification's style (section 9), served through the same pipeline.

The spec's binding keeps one current model on the instance (``load_model`` sets ``self.model_name``) and
generates with ``generate(prompt, params, request_info, multimodal_data)``. ``is_spec_style`` recognises
such a class once, at registration; ``SpecBindingAdapter`` then presents it as a typed binding
(``generate(task)``), so nothing downstream knows which style a binding uses.

Because a spec-style instance has one current model, ``ModelGate`` lets requests for the loaded model run
together and makes a request for another model wait until they finish before it switches: two requests
never change the model under each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from typing import Any, AsyncIterator, Awaitable, Callable

from lollms_server.core.bindings.base import Binding, BindingResult, GenerationTask, StreamEvent, is_spec_style
from lollms_server.core.errors import LollmsError, NotFoundError, NotSupportedError

log = logging.getLogger("lollms_server.bindings")


def _takes_arguments(fn: Callable[..., Any]) -> bool:
    params = [p for p in inspect.signature(fn).parameters.values() if p.name != "self"]
    return bool(params)


def request_info_of(task: GenerationTask, binding_name: str | None) -> dict[str, Any]:
    """The spec's ``request_info`` for one task."""
    return {
        "request_id": task.request_id,
        "generation_type": task.generation_type,
        "model_name": task.model_name,
        "binding_name": binding_name,
        "input_data": [i.model_dump() for i in task.inputs],
    }


def spec_params_of(task: GenerationTask) -> dict[str, Any]:
    """The spec's ``params``: the generation parameters, plus ``system_message`` when there is one."""
    params = dict(task.params)
    if task.system_prompt and "system_message" not in params:
        params["system_message"] = task.system_prompt
    return params


class ModelGate:
    """One current model per instance: same-model requests share it; another model waits, then switches."""

    def __init__(self) -> None:
        self.current: str | None = None
        self.users = 0
        self._cond = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def use(self, model: str | None, switch: Callable[[str], Awaitable[None]]) -> AsyncIterator[None]:
        async with self._cond:
            while model is not None and self.users and self.current != model:
                await self._cond.wait()
            if model is not None and self.current != model:
                await switch(model)
                self.current = model
            self.users += 1
        try:
            yield
        finally:
            async with self._cond:
                self.users -= 1
                self._cond.notify_all()


class SpecBindingAdapter(Binding):
    """A spec-style binding instance, presented with the typed contract."""

    def __init__(self, inner: Binding, *, supports_streaming: bool) -> None:
        # no super().__init__: every setting lives on the wrapped instance
        self.inner = inner
        self.config = inner.config
        self.resource_manager = inner.resource_manager
        self.instance_name = inner.instance_name
        self.binding_instance_name = inner.instance_name
        # spec-era bindings often set default_model_name themselves (e.g. from their own 'model' setting)
        self.default_model = getattr(inner, "default_model_name", None) or inner.default_model
        self.default_model_name = self.default_model
        self.binding_type_name = type(inner).binding_type_name  # type: ignore[misc]
        self.supports_streaming = supports_streaming  # type: ignore[misc]
        self.generation_types = type(inner).generation_types  # type: ignore[misc]
        self.input_modalities = type(inner).input_modalities  # type: ignore[misc]
        self.output_modalities = type(inner).output_modalities  # type: ignore[misc]
        self.gate = ModelGate()

    def __getattr__(self, name: str) -> Any:  # spec-era callers read binding attributes directly
        return getattr(self.inner, name)

    # ---- lifecycle -----------------------------------------------------------------------------
    async def startup(self) -> None:
        await self.inner.startup()
        if self.default_model:  # the spec loads the instance's default model before the first request
            await self._switch(self.default_model)
            self.gate.current = self.default_model

    async def shutdown(self) -> None:
        await self._spec_unload()

    async def health_check(self) -> tuple[bool, str]:
        return await self.inner.health_check()

    # ---- models --------------------------------------------------------------------------------
    async def list_available_models(self) -> list[dict[str, Any]]:
        return await self.inner.list_available_models()

    def get_supported_input_modalities(self, model_name: str | None = None) -> list[str]:
        fn = self.inner.get_supported_input_modalities
        return list(fn(model_name) if _takes_arguments(fn) else fn())  # type: ignore[call-arg]

    def get_supported_output_modalities(self, model_name: str | None = None) -> list[str]:
        fn = self.inner.get_supported_output_modalities
        return list(fn(model_name) if _takes_arguments(fn) else fn())  # type: ignore[call-arg]

    def supports_input_role(self, input_type: str, role: str, model_name: str | None = None) -> bool:
        fn = self.inner.supports_input_role
        if len([p for p in inspect.signature(fn).parameters if p != "self"]) == 2:
            return bool(fn(input_type, role))  # type: ignore[call-arg]
        return bool(fn(input_type, role, model_name))

    async def load_model(self, model_name: str) -> bool:
        return bool(await self.inner.load_model(model_name))

    async def unload_model(self, model_name: str | None = None) -> bool:
        return await self._spec_unload()

    async def _spec_unload(self) -> bool:
        fn = self.inner.unload_model
        result = await (fn(None) if _takes_arguments(fn) else fn())  # type: ignore[call-arg]
        self.gate.current = None
        return bool(result)

    async def get_model_info(self, model_name: str | None = None) -> dict[str, Any]:
        return await self.inner.get_model_info(model_name)

    async def _switch(self, model: str) -> None:
        if getattr(self.inner, "model_name", None) == model and getattr(self.inner, "_model_loaded", True):
            return
        try:
            ok = await self.inner.load_model(model)
        except NotImplementedError as exc:
            raise NotSupportedError(f"binding '{self.instance_name}' cannot load models: {exc}") from exc
        if ok is False:
            raise NotFoundError(f"binding instance '{self.instance_name}' could not load model '{model}'")

    def needs_resource(self, task: GenerationTask) -> bool:
        # spec-style bindings take the ResourceManager slot themselves (acquire_gpu_resource); taking one
        # here too would deadlock a single slot. Only an explicit instance setting asks the pipeline to.
        return bool(self.config.get("requires_gpu", False))

    # ---- generation ----------------------------------------------------------------------------
    def _spec_args(self, task: GenerationTask) -> dict[str, Any]:
        return {
            "prompt": task.prompt,
            "params": spec_params_of(task),
            "request_info": request_info_of(task, self.instance_name),
            "multimodal_data": [i for i in task.inputs if i.type != "text"],
        }

    async def generate(self, task: GenerationTask) -> BindingResult:
        async with self.gate.use(task.model_name, self._switch):
            return await self._spec_generate(task)

    async def generate_stream(self, task: GenerationTask) -> AsyncIterator[StreamEvent]:
        async with self.gate.use(task.model_name, self._switch):
            own_stream = type(self.inner).generate_stream is not Binding.generate_stream
            if not own_stream:
                result = await self._spec_generate(task)
                yield {"type": "final", "content": result}
                return
            try:
                async for event in self.inner.generate_stream(**self._spec_args(task)):  # type: ignore[call-arg]
                    yield event
            except NotImplementedError as exc:
                raise NotSupportedError(f"binding '{self.instance_name}': {exc or 'not implemented'}") from exc

    async def _spec_generate(self, task: GenerationTask) -> BindingResult:
        try:
            return await self.inner.generate(**self._spec_args(task))  # type: ignore[call-arg]
        except NotImplementedError as exc:
            raise NotSupportedError(f"binding '{self.instance_name}': {exc or 'not implemented'}") from exc

    # ---- tokens --------------------------------------------------------------------------------
    async def tokenize(self, text: str, *, add_bos: bool = False, add_eos: bool = False,
                       model_name: str | None = None) -> list[int]:
        call = self.inner.tokenize(text, add_bos=add_bos, add_eos=add_eos, **_model_kw(self.inner.tokenize, model_name))
        return await _not_implemented_is_501(call, self.instance_name, "tokenization")

    async def detokenize(self, tokens: list[int], *, model_name: str | None = None) -> str:
        call = self.inner.detokenize(tokens, **_model_kw(self.inner.detokenize, model_name))
        return await _not_implemented_is_501(call, self.instance_name, "detokenization")


def _model_kw(fn: Callable[..., Any], model_name: str | None) -> dict[str, Any]:
    """``{"model_name": ...}`` when ``fn`` takes it (some spec-era bindings do not)."""
    params = inspect.signature(fn).parameters
    takes = "model_name" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
    return {"model_name": model_name} if takes else {}


async def _not_implemented_is_501(call: Awaitable[Any], instance: str, what: str) -> Any:
    try:
        return await call
    except NotImplementedError as exc:
        raise NotSupportedError(f"binding '{instance}' does not support {what}: {exc}") from exc
    except LollmsError:
        raise
