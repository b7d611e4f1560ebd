"""Text from a backend made valid Unicode: a lone UTF-16 surrogate becomes U+FFFD.

A provider that cuts a string inside an emoji sends valid JSON (``"\\ud83d"``) that decodes to a Python string
no UTF-8 encoder accepts; every answer would then fail when it is written. Clients get their own such strings
refused (`api.strict_json`); a backend's are repaired where its output enters the pipeline, as a UTF-8 decoder
repairs an invalid byte sequence. A surrogate pair held as two code units is joined into its character.
"""

from __future__ import annotations

import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_text(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD (the same object when it has none)."""
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def valid_value(value: Any) -> Any:
    """``value`` (JSON-like: dicts, lists, strings…) with every string made valid; the same object when nothing
    in it had to change."""
    if isinstance(value, str):
        return valid_text(value)
    if isinstance(value, dict):
        pairs = [(valid_value(k), valid_value(v)) for k, v in value.items()]
        if all(k is k0 and v is v0 for (k, v), (k0, v0) in zip(pairs, value.items())):
            return value
        return dict(pairs)
    if isinstance(value, (list, tuple)):
        items = [valid_value(v) for v in value]
        if all(a is b for a, b in zip(items, value)):
            return value
        return type(value)(items)
    return value
