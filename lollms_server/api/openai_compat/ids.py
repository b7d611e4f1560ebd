"""Model ids of the OpenAI-compatible API and how they select a binding instance, model and personality.

Scheme (instance names never contain "/" or "@"):

- ``<instance>``                      the instance with its default model
- ``<instance>/<model>``              the instance with that model (the model name may itself contain "/")
- ``personality:<name>``              the personality, on its own binding/model or the server default
- ``<instance>@<personality>``        the personality on that instance (default model)
- ``<instance>/<model>@<personality>`` the personality on that instance and model
- an alias (``gpt-4o-mini``, ``tts-1``, ``whisper-1``, ``dall-e-3``… see ``core.aliases``): the default
  instance of its generation type, or the model id it names; an instance of the same name wins
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from lollms_server.api.openai_compat.errors import OpenAIError, model_not_found
from lollms_server.api.openai_compat.models import ModelCard
from lollms_server.core.aliases import ALIAS_TYPES
from lollms_server.core.bindings.base import Binding
from lollms_server.core.errors import NotFoundError, echo
from lollms_server.core.secrets import REDACTOR
from lollms_server.core.services import Services

log = logging.getLogger("lollms_server.openai")

PERSONALITY_PREFIX = "personality:"
LIST_MODELS_TIMEOUT = 10.0
_STARTED = int(time.time())
PARSED_IDS_KEPT = 256  # model ids kept parsed (the table is emptied when full)


@dataclass(frozen=True)
class ModelRef:
    """What a model id selects; ``None`` parts fall back to the personality or the server defaults."""

    model_id: str
    binding_name: str | None = None
    model_name: str | None = None
    personality: str | None = None


class _ParsedIds:
    """Model id as sent -> its parse, for the ids that named an instance and were no alias of ``aliases`` (the
    configuration's alias table, made once per configuration): emptied when the table changes or when full. An
    entry is used only while its instance exists (an id that is an instance's name is no alias either)."""

    def __init__(self) -> None:
        self.aliases: object = None
        self.refs: dict[str, ModelRef] = {}

    def get(self, model_id: str, services: Services) -> ModelRef | None:
        ref = self.refs.get(model_id)
        if ref is None or self.aliases is not services.config.model_aliases:
            return None
        return ref if ref.binding_name in services.bindings.instances else None  # (binding_name: never None here)

    def keep(self, model_id: str, ref: ModelRef, services: Services) -> None:
        aliases = services.config.model_aliases
        if aliases is not self.aliases or len(self.refs) >= PARSED_IDS_KEPT:
            self.refs, self.aliases = {}, aliases
        self.refs[model_id] = ref


_PARSED = _ParsedIds()


def parse_model_id(model_id: str) -> ModelRef:
    text = model_id.strip()
    if not text:
        raise OpenAIError(400, "'model' must not be empty; list model ids with GET /v1/models.", param="model")
    if text.startswith(PERSONALITY_PREFIX):
        name = text[len(PERSONALITY_PREFIX):].strip()
        if not name:
            raise model_not_found(model_id, "Write personality:<name>.")
        return ModelRef(model_id, personality=name)
    personality: str | None = None
    if "@" in text:
        text, _, personality = text.rpartition("@")
        if not text or not personality:
            raise model_not_found(model_id, "Write <instance>@<personality> or <instance>/<model>@<personality>.")
    instance, slash, model = text.partition("/")
    if not instance or (slash and not model):
        raise model_not_found(model_id)
    return ModelRef(model_id, instance, model or None, personality)


async def _check_model(binding: Binding, ref: ModelRef) -> None:
    """404 when the binding says it cannot serve the named model (its check_model raises NotFoundError)."""
    if not ref.model_name or type(binding).check_model is Binding.check_model:  # (the base class checks nothing)
        return
    try:
        await binding.check_model(ref.model_name)
    except NotFoundError as exc:
        raise model_not_found(ref.model_id, REDACTOR.redact(exc.message)) from None
    except Exception as exc:  # a binding that cannot tell: let the request decide
        log.debug("get_model_info(%s) failed: %s", ref.model_name, REDACTOR.redact(str(exc)))


def known_model(services: Services, model_id: str) -> ModelRef | None:
    """``resolve_model``'s answer without awaiting, for an id parsed before whose checks need no binding call
    (its instance is loaded and keeps the base class's check_model, its personality is enabled); else None."""
    ref = _PARSED.get(model_id, services)
    if ref is None or (ref.personality is not None and ref.personality not in services.personalities.personalities):
        return None
    rec = services.bindings.instances.get(ref.binding_name or "")  # (_PARSED.get answers while it exists)
    binding = rec.binding if rec is not None else None
    if binding is None or (ref.model_name and type(binding).check_model is not Binding.check_model):
        return None  # (failed to load: resolve_model answers 503; a binding that checks model names: it is asked)
    return ref


async def resolve_model(services: Services, model_id: str | None, generation_type: str) -> ModelRef:
    """Parse and check a model id or alias; ``None`` selects ``defaults.<generation_type>_binding``."""
    raw_id = model_id
    if model_id is None or not model_id.strip():
        name = services.config.default_binding(generation_type)
        if not name:
            raise OpenAIError(
                400, f"no 'model' given and no default '{generation_type}_binding' is configured: set "
                f"defaults.{generation_type}_binding to an instance that can serve it (lollms-server wizard), "
                "or name a model id from GET /v1/models", param="model",
            )
        return ModelRef(name, name)
    ref = _PARSED.get(model_id, services)
    if ref is not None:  # the common case: "<instance>[/<model>]" sent before
        return await _checked(services, ref)
    model_id = model_id.strip()
    target = None if model_id in services.bindings.instances else services.config.model_aliases.get(model_id)
    if target in ALIAS_TYPES:
        name = services.config.default_binding(str(target))
        if not name:
            raise model_not_found(model_id, f"It stands for the default '{target}' instance, but defaults.{target}_binding "
                                  "is not set: configure one, or name a model id from GET /v1/models.")
        return await _checked(services, ModelRef(model_id, name))
    ref = parse_model_id(target or model_id)
    if target:  # the ref keeps the id the client named
        ref = ModelRef(model_id, ref.binding_name, ref.model_name, ref.personality)
    elif ref.binding_name is not None and model_id == raw_id:  # no alias: the id alone says what it selects
        _PARSED.keep(model_id, ref, services)
    return await _checked(services, ref)


async def _checked(services: Services, ref: ModelRef) -> ModelRef:
    model_id = ref.model_id
    if ref.personality and ref.personality not in services.personalities.personalities:
        raise model_not_found(model_id, f"No enabled personality '{echo(ref.personality)}'.")
    if ref.binding_name:
        if ref.binding_name not in services.bindings.instances:
            raise model_not_found(model_id, f"No binding instance '{echo(ref.binding_name)}'.")
        await _check_model(services.bindings.get(ref.binding_name), ref)  # 503 when the instance failed to load
    return ref


def binding_for(services: Services, ref: ModelRef, generation_type: str = "ttt") -> tuple[Binding, str | None]:
    """The binding and model a ref runs on (for tokenizer and model-info calls)."""
    personality = services.personalities.personalities.get(ref.personality) if ref.personality else None
    name = ref.binding_name or (personality.config.binding_name if personality else None) or services.config.default_binding(generation_type)
    if not name:
        raise OpenAIError(400, f"model '{echo(ref.model_id)}' names no binding instance and no default is configured", param="model")
    binding = services.bindings.get(name)
    model = ref.model_name or (personality.config.model_name if personality else None) or binding.default_model
    return binding, model


# ---- listing -------------------------------------------------------------------------------------
async def _models_of(name: str, binding: Binding) -> list[str]:
    try:
        models = await asyncio.wait_for(binding.list_available_models(), LIST_MODELS_TIMEOUT)
    except Exception as exc:
        log.warning("instance '%s' could not list its models: %s", name, REDACTOR.redact(f"{type(exc).__name__}: {exc}"))
        return []
    return [str(m["name"]) for m in models if isinstance(m, dict) and m.get("name")]


def _card(model_id: str, **lollms: object) -> ModelCard:
    return ModelCard(id=model_id, created=_STARTED, lollms=lollms)


async def list_model_cards(services: Services) -> list[ModelCard]:
    """Loaded instances (the default text instance first), their models, then personalities.

    An instance card says ``state``: ``active``, or ``no_model`` with ``state_detail`` saying how to fix it.
    """
    active = {n: r.binding for n, r in services.bindings.instances.items() if r.binding is not None}
    default_ttt = services.config.default_binding("ttt")
    order = sorted(active, key=lambda n: (n != default_ttt, n))
    listed = await asyncio.gather(*(_models_of(n, active[n]) for n in order))
    cards: list[ModelCard] = []
    for name, models in zip(order, listed):
        binding = active[name]
        kinds = sorted(binding.generation_types)
        rec = services.bindings.instances[name]
        cards.append(_card(name, binding_instance_name=name, model_name=binding.default_model, personality=None,
                           generation_types=kinds, state=rec.state, state_detail=rec.state_detail))
        for model in models:
            cards.append(_card(f"{name}/{model}", binding_instance_name=name, model_name=model, personality=None, generation_types=kinds))
    for pname, personality in sorted(services.personalities.personalities.items()):
        cards.append(_card(
            f"{PERSONALITY_PREFIX}{pname}", binding_instance_name=personality.config.binding_name,
            model_name=personality.config.model_name, personality=pname, generation_types=["ttt"],
        ))
    return cards
