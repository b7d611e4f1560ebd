"""pydantic without parsing the text signature of builtin types at start-up (bench/bench_startup.py).

For every model field with a ``default_factory``, pydantic asks whether the factory takes the validated data
(``takes_validated_data_argument``: ``inspect.signature`` of the factory). For a builtin type such as ``list``
or ``dict``, the usual factories, ``inspect`` parses the type's text signature with ``tokenize``, whose first
use compiles a large regular expression: 12 to 15 ms of the server's CPU until ready, for an answer known in
advance (each of these types is called with no argument, as pydantic calls a factory that takes none:
pydantic's own check answers False for them). ``prepare()`` answers False for those types at once and
leaves every other factory to pydantic's check. When a pydantic release has no such check, nothing is changed
(``tests/test_startup_lazy.py`` checks that start-up does not tokenize).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

NO_ARGUMENT_TYPES = (list, dict, set, frozenset, tuple, str, bytes, int, float, bool)


def prepare() -> None:
    """Once, before the first model of this server is built."""
    try:
        from pydantic._internal import _fields, _generate_schema
    except ImportError as exc:
        _turned_off(f"cannot import: {exc}")
        return
    check = getattr(_fields, "takes_validated_data_argument", None)
    if check is None:
        _turned_off("pydantic._internal._fields has no takes_validated_data_argument")
        return
    if getattr(check, "answers_builtin_types", False):
        return
    code = getattr(check, "__code__", None)
    if code is None or code.co_argcount != 1 or code.co_varnames[:1] != ("default_factory",):
        _turned_off("pydantic._internal._fields.takes_validated_data_argument is not a function of default_factory alone")
        return
    fast = _answer_builtin_types(check)
    _fields.takes_validated_data_argument = fast  # type: ignore[assignment]
    if getattr(_generate_schema, "takes_validated_data_argument", None) is check:
        _generate_schema.takes_validated_data_argument = fast  # type: ignore[assignment]


def _answer_builtin_types(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    def takes_validated_data_argument(default_factory: Any) -> bool:
        if any(default_factory is t for t in NO_ARGUMENT_TYPES):
            return False
        return check(default_factory)

    takes_validated_data_argument.__doc__ = check.__doc__
    takes_validated_data_argument.__wrapped__ = check  # type: ignore[attr-defined]  # pydantic's own check
    takes_validated_data_argument.answers_builtin_types = True  # type: ignore[attr-defined]
    return takes_validated_data_argument


def _turned_off(reason: str) -> None:
    from lollms_server import shortcuts

    shortcuts.turned_off("api/pydantic_import.py (default factories of builtin types answered at once)", "pydantic", reason)
