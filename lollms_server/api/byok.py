"""Bring your own key: provider credentials a request carries in headers, for instances that allow it.

Headers: ``X-Provider-Api-Key`` (the provider key) and ``X-Provider-Base-Url`` (another server; only for
instances with ``allow_request_base_url``). The values live in the request's GenerationTask only; they are
masked in every log line and error while the request runs and are never stored.
"""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator, Iterator, Mapping, TypeVar

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection

from lollms_server.core.bindings.base import Binding
from lollms_server.core.errors import BadRequestError
from lollms_server.core.secrets import REDACTOR

KEY_HEADER = "X-Provider-Api-Key"
BASE_URL_HEADER = "X-Provider-Base-Url"
T = TypeVar("T")


_PREFIX = b"x-provider-"  # both headers below, lower-cased as ASGI gives header names


def credentials_of(request: HTTPConnection) -> dict[str, str] | None:
    """``credentials_from_headers(request.headers)``; a request without any provider header (most of them) is
    answered from the raw header names, without building its ``Headers``."""
    for name, _ in request.scope.get("headers") or ():
        if name.startswith(_PREFIX):
            return credentials_from_headers(request.headers)
    return None


def credentials_from_headers(headers: Headers) -> dict[str, str] | None:
    key = (headers.get(KEY_HEADER) or "").strip()
    url = (headers.get(BASE_URL_HEADER) or "").strip()
    if not key and not url:
        return None
    if url and not url.lower().startswith(("http://", "https://")):
        raise BadRequestError(f"{BASE_URL_HEADER} must be an http:// or https:// URL")
    return {k: v for k, v in (("api_key", key), ("base_url", url)) if v}


def check_allowed(binding: Binding | None, binding_name: str | None, creds: Mapping[str, str] | None) -> None:
    """400 naming the setting when the chosen instance does not take request credentials."""
    if not creds:
        return
    if binding is None:
        raise BadRequestError(f"{KEY_HEADER} needs a binding instance that allows request credentials")
    if not binding.config.get("allow_request_credentials"):
        raise BadRequestError(
            f"binding instance '{binding_name}' does not accept request credentials ({KEY_HEADER}); "
            "set allow_request_credentials: true in its instance config to allow them"
        )
    if creds.get("base_url") and not binding.config.get("allow_request_base_url"):
        raise BadRequestError(
            f"binding instance '{binding_name}' does not accept {BASE_URL_HEADER}; "
            "set allow_request_base_url: true in its instance config to allow it"
        )


@contextlib.contextmanager
def masked(creds: Mapping[str, Any] | None) -> Iterator[None]:
    with REDACTOR.scoped((creds or {}).get("api_key")):
        yield


async def masked_stream(creds: Mapping[str, Any] | None, events: AsyncIterator[T]) -> AsyncIterator[T]:
    """Keep the request's credentials masked until its stream ends."""
    with masked(creds):
        try:
            async for event in events:
                yield event
        finally:
            with contextlib.suppress(Exception):
                await events.aclose()  # type: ignore[attr-defined]
