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


_LEAVES = frozenset({int, float, bool, type(None)})


def _clean(value: Any) -> bool:
    """No string in ``value`` holds a surrogate (the per-token check: no allocation, no call per plain leaf)."""
    kind = type(value)
    if kind is str:
        return value.isascii() or _SURROGATE.search(value) is None
    if kind is dict:
        for k, v in value.items():
            if not (type(k) is str and k.isascii()) and not _clean(k):
                return False
            if type(v) in _LEAVES or (type(v) is str and v.isascii()):
                continue
            if not _clean(v):
                return False
        return True
    if kind is list or kind is tuple:
        return all(type(v) in _LEAVES or (type(v) is str and v.isascii()) or _clean(v) for v in value)
    if isinstance(value, (str, dict, list, tuple)):  # a subclass: the general walk says
        return _repaired(value) is value
    return True


def valid_value(value: Any) -> Any:
    """``value`` (JSON-like: dicts, lists, strings…) with every string made valid; the same object when nothing
    in it had to change."""
    return value if _clean(value) else _repaired(value)


def _repaired(value: Any) -> Any:
    if isinstance(value, str):
        return valid_text(value)
    if isinstance(value, dict):
        pairs = [(_repaired(k), _repaired(v)) for k, v in value.items()]
        if all(k is k0 and v is v0 for (k, v), (k0, v0) in zip(pairs, value.items())):
            return value
        return dict(pairs)
    if isinstance(value, (list, tuple)):
        items = [_repaired(v) for v in value]
        if all(a is b for a, b in zip(items, value)):
            return value
        return type(value)(items)
    return value
