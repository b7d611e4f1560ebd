"""Error types of the core; each carries the HTTP status it maps to (never chosen by matching text)."""

from __future__ import annotations


MAX_ECHO = 80  # characters of a client-given name repeated in an error message


def echo(value: object, limit: int = MAX_ECHO) -> str:
    """A client-given name as it may appear in an error message: shortened, control characters escaped."""
    text = str(value)
    if len(text) > limit:
        text = f"{text[:limit]}… ({len(text)} characters)"
    return "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii") for c in text)


class LollmsError(Exception):
    status_code: int = 500
    headers: dict[str, str] | None = None  # extra response headers (e.g. Retry-After)

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequestError(LollmsError):
    status_code = 400


class NotFoundError(LollmsError):
    status_code = 404


class QueueTimeoutError(LollmsError):
    status_code = 408

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}


class NotSupportedError(LollmsError):
    status_code = 501


class UnavailableError(LollmsError):
    status_code = 503


class QueueFullError(UnavailableError):
    """Every compute slot is busy and the waiting queue is full: try again later."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}


class SharedStateUnavailableError(UnavailableError):
    """A shared service this server is configured to use (Redis) cannot be reached: nothing runs without it."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}


class BackendError(LollmsError):
    """The backend behind a binding failed (500, as the spec says for binding failures)."""

    status_code = 500


class UpstreamError(BackendError):
    """A remote backend failed or answered something unusable (502); 429 stays 429."""

    status_code = 502

    def __init__(self, message: str, upstream_status: int | None = None) -> None:
        super().__init__(message)
        self.upstream_status = upstream_status
        if upstream_status == 429:
            self.status_code = 429


class FeatureNotSupportedError(NotSupportedError):
    """The request asks for something the selected binding or model cannot do (tools, embeddings…): 400.

    Unlike ``NotSupportedError`` (501, the spec's "binding does not implement this"), the client can fix
    it by choosing another model or dropping the option. ``param`` names the request field at fault.
    """

    status_code = 400

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class RateLimitedError(LollmsError):
    """A per-key limit is reached; ``retry_after`` says in how many seconds to try again."""

    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))
        self.headers = {"Retry-After": str(self.retry_after)}
