"""JSON bodies must be valid Unicode: a lone UTF-16 surrogate ("\\ud800") is refused with a 400 naming where.

JSON lets a client escape half of a surrogate pair; Python then holds a string that cannot be encoded, so
it would fail far from the input (echoed in an error message, written to a stream, sent upstream). It is
refused here, at parsing, for every route built with ``StrictJSONRoute``.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from starlette.exceptions import HTTPException

from lollms_server.api.lean_route import LeanRoute
from lollms_server.core.errors import echo

_SURROGATE = re.compile("[\ud800-\udfff]")
# how a surrogate can arrive: a JSON escape \uD800-\uDFFF, or its raw UTF-8-style bytes (json.loads lets them through)
_MAYBE_SURROGATE = re.compile(rb"\\[uU][dD][89a-fA-F]|\xed[\xa0-\xbf]")


def lone_surrogate_at(value: Any) -> str | None:
    """Where (``messages[2].content``) the first string holding a lone surrogate is, or None."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return path or "body"
        elif isinstance(item, dict):
            for key, sub in item.items():
                where = f"{path}.{key}" if path else str(key)
                if _SURROGATE.search(str(key)):
                    return where
                stack.append((where, sub))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", sub) for i, sub in enumerate(item))
    return None


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            data = await super().json()
            if not _MAYBE_SURROGATE.search(await self.body()):
                return data  # no surrogate can be in there: skip the walk
            where = lone_surrogate_at(data)
            if where is not None:
                raise HTTPException(
                    400, f"{echo(where)} holds a lone UTF-16 surrogate (such as \\ud800), which is not valid Unicode; "
                    "send valid UTF-8 text",
                )
        return self._json


class StrictJSONRoute(LeanRoute):
    """An APIRoute whose JSON body is parsed by ``StrictJSONRequest`` (lean: see ``lean_route``)."""

    request_class = StrictJSONRequest

    def raw_json_ok(self, raw: bytes) -> bool:
        return not _MAYBE_SURROGATE.search(raw)  # no surrogate can be in there: nothing for StrictJSONRequest to refuse
