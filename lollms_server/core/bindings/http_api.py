"""A lean JSON-over-HTTP client for remote bindings: one aiohttp session per instance, retries, SSE reading.

The gateway path (client -> lollms_server -> a remote API) spends most of its own CPU in the HTTP client, so
the bindings on the hot path talk to their provider through this module instead of a provider SDK: one
``aiohttp.ClientSession`` per binding instance (keep-alive connections, made at start-up), JSON encoded
and decoded once, and a small Server-Sent Events reader. Measured on the gateway benchmark
(``bench/bench_gateway.py``): about 0.2 ms of client CPU per request, against 0.7 ms for httpx and more
for the ``openai`` SDK built on it.

Every failure becomes a ``LollmsError`` whose message names the provider and the instance and never the key:
HTTP errors through ``status_error``, unreachable or silent servers through ``connection_error``, answers of
the wrong shape (HTML page, cut JSON, a line longer than the bound) through ``unusable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from lollms_server.core.bindings.remote import MAX_DETAIL, connection_error, status_error
from lollms_server.core.errors import LollmsError, UpstreamError
from lollms_server.core.secrets import REDACTOR

MAX_ANSWER_BYTES = 128 * 1024 * 1024  # a whole JSON answer (a large batch of embeddings fits)
MAX_LINE_BYTES = 1024 * 1024  # one line of an event stream (aiohttp refuses longer ones)
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
RETRY_BASE_S, RETRY_MAX_S, RETRY_AFTER_MAX_S = 0.5, 8.0, 60.0


def new_session(timeout: float) -> aiohttp.ClientSession:
    """A session for one binding instance: ``timeout`` bounds the connect and every wait for data."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout),
        read_bufsize=MAX_LINE_BYTES // 2,  # aiohttp's line limit is twice this
        auto_decompress=True, trust_env=False, raise_for_status=False,
    )


def error_detail(body: bytes) -> str:
    """The provider's message in an error answer (``{"error": {"message": ...}}``, ``{"error": "..."}``, text)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body[:MAX_DETAIL * 2].decode("utf-8", "replace")
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data))
        if isinstance(err, dict):
            return str(err.get("message") or err)
        return str(err)
    return str(data)


async def read_bounded(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most ``limit`` bytes of the body (the rest is left unread: the connection is then not reused)."""
    parts: list[bytes] = []
    size = 0
    while size < limit:
        part = await resp.content.read(limit - size)
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


def retry_delay(attempt: int, retry_after: str | None) -> float:
    """Seconds before retry ``attempt`` (0-based): the server's Retry-After when sensible, else backoff with jitter."""
    if retry_after:
        with contextlib.suppress(ValueError):
            seconds = float(retry_after)
            if 0 <= seconds <= RETRY_AFTER_MAX_S:
                return seconds
    return min(RETRY_BASE_S * 2**attempt, RETRY_MAX_S) * (1 - 0.25 * random.random())


@dataclass
class HTTPAPI:
    """One connection (base URL and key) of a binding instance, over the instance's shared session."""

    session: aiohttp.ClientSession
    base_url: str
    headers: dict[str, str]
    provider: str
    instance: str
    max_retries: int = 2

    def __post_init__(self) -> None:
        self._json_headers = {**self.headers, "Content-Type": "application/json"}  # of a request with a body
        self._urls: dict[str, str] = {}  # path -> url, made once per path

    def url(self, path: str) -> str:
        url = self._urls.get(path)
        if url is None:
            url = f"{self.base_url.rstrip('/')}/{path.lstrip('/')}"
            if len(self._urls) < 64:  # (the bindings' own paths: a handful)
                self._urls[path] = url
        return url

    def unusable(self, detail: str) -> UpstreamError:
        """An error (502) for an answer that is unusable although its HTTP status was fine."""
        return UpstreamError(f"{self.provider} sent an unusable answer to binding instance '{self.instance}': "
                             f"{REDACTOR.redact(detail)[:MAX_DETAIL]}")

    def _fails(self, exc: BaseException) -> LollmsError:
        if isinstance(exc, LollmsError):
            return exc
        timeout = isinstance(exc, (asyncio.TimeoutError, TimeoutError))
        return connection_error(self.provider, self.instance, exc, timeout=timeout)

    async def _open(self, method: str, path: str, body: Any) -> aiohttp.ClientResponse:
        """A response with a 2xx status (body unread), after the retries; raises the mapped error otherwise."""
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        headers = self.headers if data is None else self._json_headers
        url = self.url(path)
        attempt = 0
        while True:
            try:
                resp = await self.session.request(method, url, data=data, headers=headers)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                if attempt < self.max_retries:
                    await asyncio.sleep(retry_delay(attempt, None))
                    attempt += 1
                    continue
                raise self._fails(exc) from None
            if resp.status < 300:
                return resp
            try:
                detail = error_detail(await read_bounded(resp, 64 * 1024))
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                detail = ""
            finally:
                resp.release()
            if resp.status in RETRY_STATUSES and attempt < self.max_retries:
                await asyncio.sleep(retry_delay(attempt, resp.headers.get("retry-after")))
                attempt += 1
                continue
            raise status_error(self.provider, self.instance, resp.status, detail)

    async def request_json(self, method: str, path: str, body: Any = None) -> Any:
        """The decoded JSON answer of ``method path`` (``body`` sent as JSON)."""
        resp = await self._open(method, path, body)
        try:
            if (resp.content_length or 0) > MAX_ANSWER_BYTES:
                raise self.unusable(f"the answer is {resp.content_length} bytes, more than the {MAX_ANSWER_BYTES} accepted")
            raw = await resp.read() if resp.content_length is not None else await read_bounded(resp, MAX_ANSWER_BYTES + 1)
            if len(raw) > MAX_ANSWER_BYTES:
                raise self.unusable(f"the answer is longer than the {MAX_ANSWER_BYTES} bytes accepted")
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise self._fails(exc) from None
        finally:
            resp.release()
        try:
            return json.loads(raw)
        except ValueError:
            raise self.unusable("the body is not JSON of the expected shape (HTML page, proxy error or truncated answer?)") from None

    @contextlib.asynccontextmanager
    async def event_stream(self, path: str, body: Any) -> AsyncIterator[AsyncIterator[Any]]:
        """The decoded JSON ``data`` of each event of a Server-Sent Events answer; ``[DONE]`` ends it.

        Leaving the block early closes the connection (the server stops generating when the client went away);
        a stream read to its end leaves the connection open for the next request.
        """
        resp = await self._open("POST", path, body)
        try:
            yield self._events(resp)
        finally:
            if resp.content.at_eof():
                resp.release()  # read to its end: the connection goes back to the pool
            else:
                resp.close()  # left early: closing the connection tells the server to stop

    async def _events(self, resp: aiohttp.ClientResponse) -> AsyncIterator[Any]:
        data: list[bytes] = []
        try:
            async for raw in resp.content:
                line = raw.rstrip(b"\r\n")
                if line.startswith(b"data:"):
                    data.append(line[6:] if line[5:6] == b" " else line[5:])
                elif not line and data:
                    payload = data[0] if len(data) == 1 else b"\n".join(data)
                    data = []
                    if payload == b"[DONE]":
                        return
                    yield self._event(payload)
                # other fields (event:, id:, retry:) and comments carry nothing a binding needs
        except ValueError as exc:  # aiohttp: a line longer than the bound
            raise self.unusable(f"a line of the event stream is too long or unreadable ({exc})") from None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise self._fails(exc) from None
        if data and data != [b"[DONE]"]:
            yield self._event(b"\n".join(data))

    def _event(self, payload: bytes) -> Any:
        try:
            event = json.loads(payload)
        except ValueError:
            raise self.unusable("an event of the stream is not JSON (HTML page, proxy error or truncated answer?)") from None
        if isinstance(event, dict) and event.get("error"):
            err = event["error"]
            message = str(err.get("message") or err) if isinstance(err, dict) else str(err)
            raise UpstreamError(f"{self.provider} reported an error in the stream of binding instance '{self.instance}': "
                                f"{REDACTOR.redact(message)[:MAX_DETAIL]}")
        return event
