"""Shared pieces of the remote bindings (OpenAI-compatible, Ollama, Gemini, DALL-E).

Keys come from the instance config, from an environment variable the instance names, or (when the
instance allows it) from the request itself ("bring your own key"). Every key is registered with the
secret redactor; upstream failures become ``UpstreamError`` with messages that never carry a key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

from lollms_server.core.bindings.base import GenerationTask
from lollms_server.core.errors import BadRequestError, LollmsError, NotFoundError, UpstreamError
from lollms_server.core.secrets import REDACTOR

MAX_DETAIL = 300


@dataclass(frozen=True)
class Connection:
    """Where and with which key one request talks to the provider."""

    base_url: str | None
    api_key: str | None
    per_request: bool  # True: built from request credentials; use a client for this request only


def configured_api_key(config: Mapping[str, Any]) -> str | None:
    """The instance key: ``api_key`` or the value of the environment variable named by ``api_key_env``."""
    key = config.get("api_key") or None
    env_name = config.get("api_key_env") or None
    if not key and env_name:
        key = os.environ.get(str(env_name)) or None
    if key:
        REDACTOR.add(key)
    return key


def connection_for(config: Mapping[str, Any], task: GenerationTask | None, default_base_url: str | None) -> Connection:
    """The instance connection, or the request's own credentials when the request brought some.

    The API layer already refused credentials for instances that do not allow them; this re-checks so
    a binding never uses request credentials against its configuration.
    """
    base_url = str(config.get("base_url") or default_base_url or "") or None
    creds = task.credentials if task is not None else None
    if not creds:
        return Connection(base_url, configured_api_key(config), per_request=False)
    if not config.get("allow_request_credentials"):
        raise BadRequestError(
            f"binding instance '{config.get('binding_instance_name')}' does not accept request credentials "
            "(set allow_request_credentials: true in its instance config)"
        )
    key = creds.get("api_key") or None  # masked by the API layer for the request's lifetime, never stored
    url = creds.get("base_url") or None
    if url and config.get("allow_request_base_url"):
        base_url = url
    return Connection(base_url, key, per_request=True)


def status_error(provider: str, instance: str, status: int | None, detail: str | None = None) -> LollmsError:
    """An UpstreamError for an HTTP error answer. 401/403 never repeat the provider text (it may quote the key)."""
    if status in (401, 403):
        return UpstreamError(
            f"{provider} rejected the API key of binding instance '{instance}' (HTTP {status}); "
            "check the instance's api_key / api_key_env or the request's X-Provider-Api-Key",
            status,
        )
    text = REDACTOR.redact((detail or "").strip())[:MAX_DETAIL]
    if status == 429:
        return UpstreamError(f"{provider} rate limit or quota exceeded for binding instance '{instance}' (HTTP 429): {text}", 429)
    if status == 404:
        return NotFoundError(f"{provider} answered 404 (unknown model or path) for binding instance '{instance}': {text}")
    if status in (400, 422):
        return BadRequestError(f"{provider} refused the request of binding instance '{instance}' (HTTP {status}): {text}")
    label = f"HTTP {status}" if status else "error"
    return UpstreamError(f"{provider} failed for binding instance '{instance}' ({label}): {text}", status)


def connection_error(provider: str, instance: str, exc: BaseException, *, timeout: bool = False) -> UpstreamError:
    what = "timed out" if timeout else "could not be reached or closed the connection"
    detail = REDACTOR.redact(f"{type(exc).__name__}: {exc}")[:MAX_DETAIL]
    return UpstreamError(f"{provider} {what} (binding instance '{instance}'): {detail}", 504 if timeout else 502)


def image_data_url(mime_type: str | None, b64: str) -> str:
    return f"data:{mime_type or 'image/png'};base64,{b64}"


def float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)
