"""Error types of the core; each carries the HTTP status it maps to (never chosen by matching text)."""

from __future__ import annotations


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


class NotSupportedError(LollmsError):
    status_code = 501


class UnavailableError(LollmsError):
    status_code = 503


class BackendError(LollmsError):
    """The backend behind a binding failed (500, as the spec says for binding failures)."""

    status_code = 500


class UpstreamError(BackendError):
    """A remote backend answered with an error status; keeps that status when it is a client error."""

    def __init__(self, message: str, upstream_status: int | None = None) -> None:
        super().__init__(message)
        self.upstream_status = upstream_status
        if upstream_status in (401, 403):
            self.status_code = 502
        elif upstream_status == 429:
            self.status_code = 429
        elif upstream_status is not None and upstream_status >= 500:
            self.status_code = 502


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
