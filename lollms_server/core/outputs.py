"""Turn whatever a binding or workflow returns into a list of OutputData."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from lollms_server.core.contract import OutputData
from lollms_server.core.errors import BackendError
from lollms_server.core.thoughts import split_thoughts
from lollms_server.core.unicode_text import valid_text, valid_value

_OUTPUT_TYPES = {"text", "image", "audio", "video", "json", "error", "info"}


def _one(item: Any) -> OutputData:
    if isinstance(item, OutputData):
        out = item
        repaired = valid_value(item.data), valid_value(item.thoughts), valid_value(item.metadata)
        if any(a is not b for a, b in zip(repaired, (item.data, item.thoughts, item.metadata))):
            out = item.model_copy(update=dict(zip(("data", "thoughts", "metadata"), repaired)))
    elif isinstance(item, str):
        out = OutputData(type="text", data=valid_text(item))
    elif isinstance(item, dict):
        item = valid_value(item)
        if item.get("type") not in _OUTPUT_TYPES:
            if "text" in item and "type" not in item:
                item = {"type": "text", "data": item["text"], "metadata": item.get("metadata")}
            else:
                raise BackendError(f"binding returned an output of unknown type {item.get('type')!r}")
        try:
            out = OutputData.model_validate({**item, "metadata": item.get("metadata") or {}})
        except ValidationError as exc:
            raise BackendError(f"binding returned a malformed output: {exc.errors()[0]['msg']}") from exc
    else:
        raise BackendError(f"binding returned {type(item).__name__}, expected text or output dicts")
    if out.type == "text" and isinstance(out.data, str) and "<think>" in out.data:
        answer, thoughts = split_thoughts(out.data)
        merged = "\n".join(t for t in (out.thoughts, thoughts) if t) or None
        out = out.model_copy(update={"data": answer, "thoughts": merged})
    if out.metadata is None:
        out = out.model_copy(update={"metadata": {}})
    return out


def standardize_result(result: Any) -> list[OutputData]:
    if result is None:
        return []
    if isinstance(result, (list, tuple)):
        return [_one(x) for x in result]
    return [_one(result)]
