"""The JSON of a plain (not streamed) chat completion whose answer is one text output, written directly.

The common answer (one text output without thoughts or tool calls, no stop sequence to apply) differs from one
request to the next only by a few values: they are escaped into a constant frame instead of building the answer
dict and serialising it. The bytes are what ``pydantic_core.to_json`` gives for that dict (compact UTF-8, the
same escapes: ``tests/test_openai_answer.py`` compares them); any other answer returns None and takes the
general path of the route.
"""

from __future__ import annotations

from json.encoder import encode_basestring as _string  # json.dumps(str, ensure_ascii=False): pydantic-core's escapes

from lollms_server.api.models import OutputData
from lollms_server.api.openai_compat.textgen import _finish_reason, _usage_of


def plain_answer(outputs: list[OutputData], chunk_id: str, created: int, model: str) -> bytes | None:
    """The ``chat.completion`` JSON of ``outputs`` when they are one plain text output, else None."""
    if len(outputs) != 1:
        return None
    out = outputs[0]
    meta, text = out.metadata, out.data
    if out.type != "text" or type(text) is not str or out.thoughts or (meta and meta.get("tool_calls")):
        return None
    reason = _finish_reason(meta.get("finish_reason") if meta else None, False)
    u = _usage_of(meta) or {}  # (as chunks.usage_fields reads it)
    prompt, completion = int(u.get("prompt_tokens", 0)), int(u.get("completion_tokens", 0))
    total = int(u.get("total_tokens", prompt + completion))
    try:
        return (f'{{"id":{_string(chunk_id)},"created":{int(created)},"model":{_string(model)},"object":"chat.completion",'
                f'"system_fingerprint":null,"choices":[{{"index":0,"message":{{"role":"assistant","content":{_string(text)}}},'
                f'"finish_reason":{_string(reason)},"logprobs":null}}],"usage":{{"prompt_tokens":{prompt},'
                f'"completion_tokens":{completion},"total_tokens":{total}}}}}').encode()
    except UnicodeEncodeError:  # a lone surrogate from a backend: the general path escapes it
        return None
