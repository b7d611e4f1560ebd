"""Shortcuts through library internals: what they were tested with, how each is checked, and the one warning.

For speed (issue 13) a few modules rely on names the libraries under the server do not promise to keep:

- ``api/h11_protocol.py`` (uvicorn's ``H11Protocol`` and ``RequestResponseCycle``, subclassed), with
  ``api/request_head.py`` and ``api/plain_send.py`` (h11's readers, header patterns and connection states);
- ``api/lean_route.py`` (FastAPI's ``Dependant``, ``APIRoute`` and ``ModelField`` attributes);
- ``api/lazy_routes.py`` (Starlette's ``get_route_path``);
- ``api/fastapi_import.py`` and ``api/pydantic_import.py`` (pydantic's ``model_rebuild`` and its
  default-factory check, FastAPI's pydantic.v1 check);
- ``api/uvicorn_import.py`` (uvicorn's package without its ``__init__``);
- ``core/dataclass_code.py`` (the ``exec`` the stdlib ``dataclasses`` module calls) and
  ``core/configguard_import.py`` (ConfigGuard, pinned in pyproject.toml);
- ``core/metrics.py`` (prometheus_client's histogram buckets: checked on each series, ``observe()`` otherwise).

Each one checks, before it is used, that what it relies on is there and shaped as expected (names, the
attributes a constructor sets, a parameter; for h11 a tiny request and answer compared with h11's own bytes).
When a check fails, that shortcut is not used — the library's standard path serves instead (uvicorn's own
protocol, h11's own ``Connection``, FastAPI's own route handler…) — and ``turned_off`` logs one WARNING
naming the library, its installed version and what was turned off. ``tests/test_shortcuts.py`` breaks each
dependency on purpose and checks that the server still starts and answers through the standard path.

Cheap by design: checks read attributes and code objects; the installed version is only looked up for the
warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import CodeType
from typing import Any

# The releases the shortcuts were tested with (the test suite passed on these); another release is checked by
# shape, not refused: the shortcuts whose checks pass are used, the others fall back.
TESTED = {"python": "3.11", "h11": "0.16.0", "uvicorn": "0.54.0", "starlette": "1.10.0", "fastapi": "0.165.0", "pydantic": "2.14.4",
          "configguard": "0.6.1"}

log = logging.getLogger("lollms_server.shortcuts")
off: dict[str, str] = {}  # shortcut -> why it is off in this process (read by the tests)


def installed_version(distribution: str) -> str:
    if distribution == "python":
        import platform

        return platform.python_version()
    try:
        from importlib.metadata import version

        return version(distribution)
    except Exception:  # noqa: BLE001 - only for a message
        return "(version unknown)"


def turned_off(shortcut: str, library: str, reason: str) -> None:
    """Log once that ``shortcut`` is off because ``library`` is not shaped as it expects."""
    if shortcut in off:
        return
    off[shortcut] = reason
    log.warning("%s %s: %s; %s is off, the library's standard path serves instead (tested with %s %s)",
                library, installed_version(library), reason, shortcut, library, TESTED.get(library, "?"))


def missing(obj: Any, *names: str) -> str | None:
    """The first of ``names`` that ``obj`` lacks, as a message; None when it has them all."""
    for name in names:
        if not hasattr(obj, name):
            return f"{getattr(obj, '__qualname__', obj)!s} has no {name}"
    return None


def code_names(func: Any) -> frozenset[str]:
    """The global and attribute names ``func``'s code uses, its nested functions and comprehensions included (the
    same set whether or not the Python version inlines comprehensions)."""
    names: set[str] = set()
    stack = [getattr(func, "__code__", None)]
    while stack:
        code = stack.pop()
        if isinstance(code, CodeType):
            names.update(code.co_names)
            stack.extend(c for c in code.co_consts if isinstance(c, CodeType))
    return frozenset(names)


def unset(label: str, method: Callable[..., Any], *names: str) -> str | None:
    """The first of ``names`` (attributes of self) that ``method`` (called ``label`` in the message) never uses or
    sets; None when it uses them all."""
    used = code_names(method)
    for name in names:
        if name not in used:
            return f"{label} sets no {name}"
    return None


def no_parameters(label: str, func: Callable[..., Any], *names: str) -> str | None:
    """The first of ``names`` that ``func`` (called ``label`` in the message) takes no parameter of; None when it
    takes them all."""
    code = getattr(func, "__code__", None)
    params = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount] if code is not None else ()
    for name in names:
        if name not in params:
            return f"{label} takes no parameter {name}"
    return None


def first(*problems: str | None) -> str | None:
    return next((p for p in problems if p), None)


def http_protocol() -> Any:
    """uvicorn's ``http=`` for ``serve``: the server's protocol (``api/h11_protocol.py``) when its checks pass,
    else uvicorn's own h11 protocol (``"h11"``)."""
    try:
        from lollms_server.api import h11_protocol
    except (ImportError, AttributeError) as exc:
        name = (getattr(exc, "name", None) or "").partition(".")[0]
        turned_off("api/h11_protocol.py", name if name in TESTED else "uvicorn", f"cannot import: {exc}")
        return "h11"
    return h11_protocol.selected()
