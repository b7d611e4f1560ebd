"""The OpenAI chat translation builds its GenerateRequest without validating it again: it must be exactly what
validating the same fields gives (values, fields-set, each item's fields-set), and model ids parsed once must
still follow the configuration (an alias added later wins, a removed instance is refused)."""

from __future__ import annotations

import pytest

from lollms_server.api.openai_compat import ids
from lollms_server.api.openai_compat.convert import chat_request
from lollms_server.api.openai_compat.errors import OpenAIError
from lollms_server.api.openai_compat.ids import ModelRef
from lollms_server.api.openai_compat.models import ChatCompletionRequest
from lollms_server.core.bindings.base import Binding
from lollms_server.core.contract import GenerateRequest, InputData
from zoos.bindings.dummy_binding import DummyBinding

BODIES = [
    {"model": "m", "messages": [{"role": "user", "content": "Hi"}]},
    {"model": "m", "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"},
                                {"role": "assistant", "content": "Hello."}, {"role": "Developer", "content": "x"},
                                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
     "stream": True, "temperature": 0.2, "stop": "END", "max_completion_tokens": 9, "seed": 3},
    {"model": "m", "messages": [{"role": "user", "content": "weather?"},
                                {"role": "assistant", "content": None,
                                 "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
                                {"role": "tool", "tool_call_id": "c1", "content": "sunny"}],
     "tools": [{"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}],
     "tool_choice": "auto", "parallel_tool_calls": False, "response_format": {"type": "json_object"}},
    {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "what is it?"},
                                                             {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]},
    {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "tools": [], "tool_choice": "none", "stop": []},
]
REFS = [ModelRef("gw/up", "gw", "up"), ModelRef("personality:p", personality="p"), ModelRef("gw@p", "gw", None, "p")]


def _fields_set(req: GenerateRequest) -> list[set[str]]:
    return [set(req.model_fields_set)] + [set(i.model_fields_set) for i in req.input_data]


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("ref", REFS)
def test_chat_request_is_what_validation_gives(body: dict, ref: ModelRef) -> None:
    made = chat_request(ChatCompletionRequest.model_validate(body), ref)
    validated = GenerateRequest.model_validate(made.model_dump(exclude_unset=True))
    assert made == validated
    assert _fields_set(made) == _fields_set(validated)
    assert all(type(i) is InputData for i in made.input_data)
    assert made.model_dump_json() == validated.model_dump_json()
    assert made.binding_name == ref.binding_name and made.personality == ref.personality


def test_chat_request_still_refuses() -> None:
    for body, param in [({"model": "m", "messages": [{"role": "system", "content": "x"}]}, "messages"),
                        ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
                        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "logprobs": True}, "logprobs"),
                        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2}, "n")]:
        with pytest.raises(OpenAIError) as err:
            chat_request(ChatCompletionRequest.model_validate(body), REFS[0])
        assert err.value.status == 400 and err.value.param == param


class _Config:
    def __init__(self, aliases: dict[str, str]) -> None:
        self.model_aliases = aliases

    def default_binding(self, generation_type: str) -> str | None:
        return None


class _Record:
    def __init__(self, binding: Binding | None) -> None:
        self.binding = binding


class _NoCheck(DummyBinding):
    check_model = Binding.check_model  # (the base class's: it checks nothing, as most remote bindings keep it)


class _Bindings:
    def __init__(self, names: list[str], binding: Binding | None = None) -> None:
        self.instances = {n: _Record(binding) for n in names}


class _Personalities:
    def __init__(self, names: list[str]) -> None:
        self.personalities = dict.fromkeys(names)


class _Services:
    def __init__(self, names: list[str], aliases: dict[str, str]) -> None:
        self.config = _Config(aliases)
        self.bindings = _Bindings(names)
        self.personalities = _Personalities(["p"])


async def test_parsed_ids_follow_the_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[ModelRef] = []

    async def _checked(services: object, ref: ModelRef) -> ModelRef:
        if ref.binding_name and ref.binding_name not in services.bindings.instances:  # type: ignore[attr-defined]
            raise OpenAIError(404, "no instance")
        checked.append(ref)
        return ref

    monkeypatch.setattr(ids, "_checked", _checked)
    services = _Services(["gw", "other"], {})
    first = await ids.resolve_model(services, "gw/up", "ttt")  # type: ignore[arg-type]
    again = await ids.resolve_model(services, "gw/up", "ttt")  # type: ignore[arg-type]
    assert first == again == ModelRef("gw/up", "gw", "up")
    assert await ids.resolve_model(services, " gw/up ", "ttt") == ModelRef("gw/up", "gw", "up")  # type: ignore[arg-type]
    services.config = _Config({"gw/up": "other/m2"})  # a reload that makes the id an alias: the alias wins
    assert await ids.resolve_model(services, "gw/up", "ttt") == ModelRef("gw/up", "other", "m2")  # type: ignore[arg-type]
    services.config = _Config({})
    assert await ids.resolve_model(services, "gw/up", "ttt") == ModelRef("gw/up", "gw", "up")  # type: ignore[arg-type]
    services.bindings = _Bindings(["other"])  # the instance went away: refused, not served from the table
    with pytest.raises(OpenAIError):
        await ids.resolve_model(services, "gw/up", "ttt")  # type: ignore[arg-type]
    assert len(checked) == 5


async def test_known_model_only_answers_what_needs_no_binding_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """The route's sync look-up answers an id parsed before only when resolve_model would answer the same without
    asking anything (else None, and resolve_model runs: 503 for a failed instance, the binding's model check)."""
    async def _checked(services: object, ref: ModelRef) -> ModelRef:
        return ref

    monkeypatch.setattr(ids, "_checked", _checked)
    dummy = _NoCheck.__new__(_NoCheck)
    services = _Services(["gw"], {})
    services.bindings = _Bindings(["gw"], dummy)
    assert ids.known_model(services, "gw/new@p") is None  # type: ignore[arg-type]  # never parsed
    for model_id in ("gw/new@p", "gw", "gw/m"):
        await ids.resolve_model(services, model_id, "ttt")  # type: ignore[arg-type]
    assert ids.known_model(services, "gw/new@p") == ModelRef("gw/new@p", "gw", "new", "p")  # type: ignore[arg-type]
    assert ids.known_model(services, "gw") == ModelRef("gw", "gw")  # type: ignore[arg-type]
    services.personalities = _Personalities([])  # the personality went away
    assert ids.known_model(services, "gw/new@p") is None  # type: ignore[arg-type]
    assert ids.known_model(services, "gw/m") is not None  # type: ignore[arg-type]
    services.bindings = _Bindings(["gw"], None)  # the instance failed to load
    assert ids.known_model(services, "gw/m") is None  # type: ignore[arg-type]
    services.bindings = _Bindings(["gw"], DummyBinding.__new__(DummyBinding))  # a binding that checks model names
    assert ids.known_model(services, "gw/m") is None  # type: ignore[arg-type]
    assert ids.known_model(services, "gw") == ModelRef("gw", "gw")  # type: ignore[arg-type]  # (no model name to check)
    services.config = _Config({"gw/m": "personality:p"})
    assert ids.known_model(services, "gw/m") is None  # type: ignore[arg-type]
