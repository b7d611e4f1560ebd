"""Browser security headers: one policy per kind of page, and a default for everything else.

Added by ``middleware.RequestContextMiddleware`` (one layer for every per-response header).

Every response gets ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` and
``X-Frame-Options: DENY``. A Content-Security-Policy is set by the page that knows what it loads (the web
UI, the docs pages); any response that set none (JSON, SSE, files) gets the strictest one, which forbids
everything, framing included.
"""

from __future__ import annotations

import base64
import hashlib
import re


CSP = "Content-Security-Policy"
COMMON_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

# The built Vue UI: its own scripts and styles only; images and audio it makes from data:/blob: URLs;
# connect-src allows other servers because the UI can be pointed at another lollms_server.
UI_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' data: blob:; font-src 'self' data:; connect-src 'self' http: https:; "
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# The "UI not built" page uses inline style attributes and nothing else.
PLAIN_PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)
_DOCS_ASSETS = "https://cdn.jsdelivr.net"


def docs_csp(html: str) -> str:
    """Policy for FastAPI's Swagger UI / ReDoc pages: their CDN files, and their inline scripts by hash."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(html)
    )
    return (
        f"default-src 'self'; script-src 'self' {_DOCS_ASSETS} {hashes}; "
        f"style-src 'self' 'unsafe-inline' {_DOCS_ASSETS} https://fonts.googleapis.com; "
        "font-src 'self' data: https://fonts.gstatic.com; img-src 'self' data: https:; worker-src 'self' blob:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


DEFAULT_RAW_HEADERS: tuple[tuple[bytes, bytes], ...] = tuple(
    (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in {**COMMON_HEADERS, CSP: API_CSP}.items()
)


_DEFAULT_NAMES = frozenset(name for name, _ in DEFAULT_RAW_HEADERS)
_DEFAULT_LINES = b"".join(b"%s: %s\r\n" % h for h in DEFAULT_RAW_HEADERS)


def default_header_lines(headers: list[tuple[bytes, bytes]]) -> bytes:
    """``add_default_headers`` as ``name: value\r\n`` head lines (see ``h11_protocol``): those ``headers`` lack."""
    present = {name.lower() for name, _ in headers}
    if present.isdisjoint(_DEFAULT_NAMES):
        return _DEFAULT_LINES
    return b"".join(b"%s: %s\r\n" % h for h in DEFAULT_RAW_HEADERS if h[0] not in present)


def add_default_headers(headers: list[tuple[bytes, bytes]]) -> None:
    """Append each header above that the response did not set itself (raw ASGI headers, in place)."""
    present = {name.lower() for name, _ in headers}
    if present.isdisjoint(_DEFAULT_NAMES):  # the usual case: all of them
        headers.extend(DEFAULT_RAW_HEADERS)
    else:
        headers.extend(h for h in DEFAULT_RAW_HEADERS if h[0] not in present)
