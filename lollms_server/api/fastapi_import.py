"""FastAPI imported without the work this server never needs at start-up (bench/bench_startup.py).

Importing FastAPI is the largest part of the server's start-up. Three parts of it serve features this
server does not use before its first /openapi.json, and are skipped or put off here:

- email-validator: FastAPI's OpenAPI models import it when it is installed, only to type the optional
  ``info.contact.email`` of a schema; this server sets no contact. It is hidden for the length of FastAPI's
  own import only (FastAPI then types that field as a string); whoever imports it later gets the real package.
- The OpenAPI document's own pydantic models (``fastapi.openapi.models``: Schema, Operation, PathItem…) are
  created with pydantic's ``defer_build``: each builds its validator on first use (the first /openapi.json,
  or the API key header's security model when the app is built) instead of all of them at import. The
  module's closing ``model_rebuild()`` calls (Schema, Operation, Encoding: they refer to each other by name)
  would build three of them at once whatever ``defer_build`` says; for the length of the import they leave a
  deferred model as it is, and its first use builds it, resolving those names in the finished module.
- FastAPI checks every route parameter against ``pydantic.v1`` models, importing ``pydantic.v1`` to do so.
  No such model can exist before ``pydantic.v1`` is imported, so the check answers False until then and
  runs FastAPI's own test afterwards.

Each step is skipped when the FastAPI or pydantic release lacks what it relies on: the import is then
FastAPI's usual one. ``tests/test_startup_lazy.py`` checks what start-up imports; the schema tests check
that /openapi.json is unchanged.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def import_fastapi() -> None:
    """Import FastAPI (once, before anything else of this server imports it)."""
    if "fastapi" in sys.modules:
        return
    import pydantic

    from lollms_server.api import pydantic_import

    pydantic_import.prepare()  # before any model is built (see there)

    hide_email = "email_validator" not in sys.modules
    if hide_email:
        sys.modules["email_validator"] = None  # type: ignore[assignment]  # `import email_validator` fails
    base_config: dict[str, Any] = pydantic.BaseModel.model_config  # type: ignore[assignment]
    defer = "defer_build" not in base_config
    rebuild = pydantic.BaseModel.__dict__.get("model_rebuild")
    if not (isinstance(rebuild, classmethod) and "_parent_namespace_depth" in rebuild.__func__.__code__.co_varnames):
        rebuild = None  # (a pydantic whose model_rebuild is not as _rebuild_unless_deferred calls it: left alone)
        from lollms_server import shortcuts

        shortcuts.turned_off("api/fastapi_import.py (OpenAPI models built on first use)", "pydantic",
                             "BaseModel.model_rebuild takes no _parent_namespace_depth")
    if defer:
        base_config["defer_build"] = True  # the models created meanwhile build on first use
        if isinstance(rebuild, classmethod):
            pydantic.BaseModel.model_rebuild = _rebuild_unless_deferred(rebuild.__func__)  # type: ignore[method-assign]
    try:
        import fastapi.openapi.models  # noqa: F401 - imports FastAPI itself first
    except Exception as exc:  # noqa: BLE001 - a release these steps do not fit: FastAPI's usual import below
        failed: Exception | None = exc
    else:
        failed = None
    finally:
        if defer:
            del base_config["defer_build"]
            if isinstance(rebuild, classmethod):
                pydantic.BaseModel.model_rebuild = rebuild  # type: ignore[method-assign,assignment]
        if hide_email:
            del sys.modules["email_validator"]
    if failed is not None:
        from lollms_server import shortcuts

        shortcuts.turned_off("api/fastapi_import.py (FastAPI imported without what start-up never needs)", "fastapi",
                             f"its import failed: {failed!r}")
        for name in [n for n in sys.modules if n == "fastapi" or n.startswith("fastapi.")]:
            del sys.modules[name]
        import fastapi.openapi.models  # noqa: F401,F811 - as it ships (a failure now is FastAPI's own)
        return
    _check_pydantic_v1_only_once_imported()


def _rebuild_unless_deferred(rebuild: Callable[..., bool | None]) -> Any:
    """``BaseModel.model_rebuild`` while FastAPI's models are created: a plain call on a deferred model waits
    for its first use; any other call is pydantic's own (same namespace depth as a direct call)."""

    def model_rebuild(cls: Any, **kwargs: Any) -> bool | None:
        if not kwargs and cls.model_config.get("defer_build") and not cls.__pydantic_complete__:
            return None
        kwargs.setdefault("_parent_namespace_depth", 3)  # the caller's frame, one above this one
        return rebuild(cls, **kwargs)

    return classmethod(model_rebuild)


def _check_pydantic_v1_only_once_imported() -> None:
    try:
        from fastapi._compat import shared
    except ImportError:
        return
    for name in ("is_pydantic_v1_model_class", "is_pydantic_v1_model_instance"):
        check: Callable[[Any], bool] | None = getattr(shared, name, None)
        if check is not None:
            setattr(shared, name, _once_v1_imported(check))


def _once_v1_imported(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    def checked(obj: Any) -> bool:
        return "pydantic.v1" in sys.modules and check(obj)

    checked.__doc__ = check.__doc__
    return checked
