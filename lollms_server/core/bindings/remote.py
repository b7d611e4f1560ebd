"""Shared pieces of the remote bindings (OpenAI-compatible, Ollama, Gemini, DALL-E).

Keys come from the instance config, from an environment variable the instance names, or (when the
instance allows it) from the request itself ("bring your own key"). Every key is registered with the
secret redactor; upstream failures become ``UpstreamError`` with messages that never carry a key.

``RemoteBinding`` holds what every remote binding does the same way (timeouts, one shared client per
instance, a client of its own for a request that brings credentials); ``OpenAISDKBinding`` adds the
client and error mapping of the official ``openai`` package for the bindings built on it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from lollms_server.core.bindings.base import Binding, GenerationTask, StreamEvent
from lollms_server.core.errors import (
    BadRequestError,
    LollmsError,
    NotFoundError,
    UnavailableError,
    UpstreamError,
)
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


def stop_list(params: Mapping[str, Any]) -> list[str] | None:
    """The request's stop sequences (``stop`` or ``stop_sequences``, one string or a list) as a list."""
    stop = params.get("stop") or params.get("stop_sequences")
    if not stop:
        return None
    return [stop] if isinstance(stop, str) else list(stop)


def text_chunk(text: str, thoughts: str | None, model: str) -> StreamEvent | None:
    """A stream chunk carrying answer text and/or reasoning text; None when there is neither."""
    if not (text or thoughts):
        return None
    event: StreamEvent = {"type": "chunk", "content": text, "metadata": {"model": model}}
    if thoughts:
        event["thoughts"] = thoughts
    return event


class _Shared:
    """``async with`` giving the instance's shared client: nothing to make or close (the common request)."""

    __slots__ = ("client",)

    def __init__(self, client: Any) -> None:
        self.client = client

    async def __aenter__(self) -> Any:
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        return None


class RemoteBinding(Binding):
    """Base of the bindings that talk to a provider over HTTP through that provider's client library.

    Subclasses set ``provider`` (named in error messages) and the defaults, and implement
    ``_make_client`` and ``_failure``; the client is used through ``async with self._client_for(task)``.
    """

    provider: ClassVar[str] = "remote API"
    default_base_url: ClassVar[str | None] = None
    default_timeout: ClassVar[float] = 120.0
    default_max_retries: ClassVar[int] = 2

    def __init__(self, config: dict[str, Any], resource_manager: Any) -> None:
        super().__init__(config, resource_manager)
        self.timeout = float(config.get("timeout") or self.default_timeout)
        retries = config.get("max_retries")
        self.max_retries = self.default_max_retries if retries is None else int(retries)
        self._client: Any = None

    # ---- provider specifics --------------------------------------------------------------------
    def _make_client(self, conn: Connection) -> Any:
        """A client of the provider's library for this connection."""
        raise NotImplementedError

    async def _close_client(self, client: Any) -> None:
        await client.close()

    def _failure(self, exc: BaseException) -> LollmsError:
        """The LollmsError for an exception raised while talking to the provider."""
        raise NotImplementedError

    # ---- clients -------------------------------------------------------------------------------
    def _connection(self, task: GenerationTask | None) -> Connection:
        return connection_for(self.config, task, self.default_base_url)

    def _shared_client(self) -> Any:
        """The instance's own client (made at startup)."""
        return self._client

    async def startup(self) -> None:
        self._client = self._make_client(self._connection(None))

    async def shutdown(self) -> None:
        if self._client is not None:
            await self._close_client(self._client)

    def _client_for(self, task: GenerationTask | None) -> contextlib.AbstractAsyncContextManager[Any]:
        """The shared client, or one for this request only (closed after it) when it brought credentials."""
        if task is None or not task.credentials:  # the instance's own connection (connection_for without credentials)
            return _Shared(self._shared_client())
        return self._own_client(self._connection(task))

    @contextlib.asynccontextmanager
    async def _own_client(self, conn: Connection) -> AsyncIterator[Any]:
        if not conn.per_request:
            yield self._shared_client()
            return
        client = self._make_client(conn)
        try:
            yield client
        finally:
            await self._close_client(client)

    # ---- helpers -------------------------------------------------------------------------------
    def _model_or_default(self, model_name: str | None) -> str:
        name = model_name or self.default_model
        if not name:
            raise NotFoundError(f"binding instance '{self.instance_name}': name a model (no default_model set)")
        return str(name)

    def _upstream_error(self, detail: str) -> LollmsError:
        """An error (502) for an answer that is unusable although its HTTP status was fine."""
        return UpstreamError(f"{self.provider} sent an unusable answer to binding instance '{self.instance_name}': "
                             f"{REDACTOR.redact(detail)[:MAX_DETAIL]}")

    def _unreadable(self, exc: BaseException) -> LollmsError | None:
        """The error for an answer the client library could not parse (HTML, not JSON, wrong shape), else None."""
        if isinstance(exc, ValueError):  # json.JSONDecodeError and pydantic's ValidationError are ValueErrors
            return self._upstream_error("the body is not JSON of the expected shape (HTML page, proxy error or truncated answer?)")
        return None


class OpenAISDKBinding(RemoteBinding):
    """A remote binding built on the official ``openai`` async client (chat or images API)."""

    package_extra: ClassVar[str] = "openai"  # the lollms_server extra that installs ``openai``
    NO_KEY: ClassVar[str] = "no-key"  # local servers need no key, the client insists on one

    def _make_client(self, conn: Connection) -> Any:
        try:
            from openai import AsyncOpenAI
        except ImportError as exc:
            raise UnavailableError(
                f"the 'openai' package is missing: pip install 'lollms_server[{self.package_extra}]'") from exc
        return AsyncOpenAI(api_key=conn.api_key or self.NO_KEY, base_url=conn.base_url or None,
                           timeout=self.timeout, max_retries=self.max_retries)

    def _failure(self, exc: BaseException) -> LollmsError:
        import openai

        if isinstance(exc, LollmsError):
            return exc
        if isinstance(exc, openai.APIStatusError):
            return status_error(self.provider, self.instance_name, exc.status_code, openai_error_detail(exc))
        if isinstance(exc, openai.APIResponseValidationError):
            return self._upstream_error("the answer does not have the shape of the OpenAI API")
        unreadable = self._unreadable(exc)
        if unreadable is not None:
            return unreadable
        return connection_error(self.provider, self.instance_name, exc, timeout=isinstance(exc, openai.APITimeoutError))


def openai_error_detail(exc: Any) -> str:
    """The provider's message in an ``openai.APIStatusError`` (``{"error": {"message": ...}}`` bodies)."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return str(err.get("message") or err)
        return str(err)
    return str(getattr(exc, "message", "") or exc)
