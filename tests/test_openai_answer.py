"""A plain chat completion of one text output is written directly (``answer.plain_answer``): its bytes must be
exactly what the route's general path gives (the answer dict through ``pydantic_core.to_json``) for every text,
model id, finish reason and usage, and every other answer must be left to the general path."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from lollms_server.api.openai_compat.answer import plain_answer
from lollms_server.api.openai_compat.routes_chat import _json, chat_completion
from lollms_server.api.openai_compat.textgen import text_result
from lollms_server.core.contract import OutputData

TEXTS = ["hello there", "", 'quote " backslash \\ slash /', "new\nline\ttab\r\x00\x1f\x7f\x08\x0c", "naïve café — 東京 🚀",
         "\u2028\u2029\ufeff", "</script><!--", "x" * 5000]
MODELS = ["gw/up", "personality:p", 'we"ird\\mo\x00del', "ünïcode/模型@persona"]
REASONS = [None, "stop", "length", "content_filter", "tool_calls", "weird"]
USAGES: list[Any] = [None, {}, {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
                     {"prompt_tokens": 5, "completion_tokens": 2}, {"prompt_tokens": 3.7, "completion_tokens": True},
                     {"prompt_tokens": "5", "completion_tokens": None, "total_tokens": 10**20, "cost": 0.5}, "not a dict"]


def _general(outputs: list[OutputData], model: str) -> bytes:
    """What the route answered for these outputs before the direct writer (and still does for the others)."""
    return bytes(_json(chat_completion(text_result(outputs, None, []), "chatcmpl-ab12", 1795897061, model)).body)  # type: ignore[arg-type]


def _output(text: Any, reason: str | None, usage: Any, **extra: Any) -> OutputData:
    meta: dict[str, Any] = {"binding": "gw", "model": "up", "request_id": "ab12", "duration": 0.001}
    if reason is not None:
        meta["finish_reason"] = reason
    if usage is not None:
        meta["usage"] = usage
    return OutputData.model_validate({"type": "text", "data": text, "metadata": meta, **extra})


@pytest.mark.parametrize("model", MODELS)
def test_plain_answer_is_the_general_paths_bytes(model: str) -> None:
    for text, reason, usage in itertools.product(TEXTS, REASONS, USAGES):
        outputs = [_output(text, reason, usage)]
        assert plain_answer(outputs, "chatcmpl-ab12", 1795897061, model) == _general(outputs, model), (text, reason, usage)
    bare = [OutputData(type="text", data="hi")]  # no metadata at all
    assert plain_answer(bare, "chatcmpl-ab12", 1795897061, model) == _general(bare, model)


def test_other_answers_take_the_general_path() -> None:
    others = [
        [_output("a", "stop", None), _output("b", "stop", None)],  # two outputs
        [_output("a", "stop", None, thoughts="hmm")],  # reasoning
        [OutputData(type="text", data="", metadata={"tool_calls": [{"id": "c1", "name": "w", "arguments": {}}]})],
        [OutputData(type="image", data="AAAA", mime_type="image/png")],
        [OutputData(type="text", data=None)],
        [_output("lone \ud800 surrogate", "stop", None)],  # not valid UTF-8: the general path escapes it
        [],
    ]
    for outputs in others:
        assert plain_answer(outputs, "chatcmpl-ab12", 1795897061, "gw/up") is None, outputs
    surrogate = others[5]
    assert b"\\ud800" in _general(surrogate, "gw/up")
