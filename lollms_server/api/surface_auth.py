"""API-key check shared by the compatibility surfaces (OpenAI ``/v1``, Ollama ``/api/*``).

The key is read from ``Authorization: Bearer KEY`` or ``X-API-Key`` and compared with the same
``security.allowed_api_keys`` as ``/api/v1``. A surface listed in ``security.keyless_loopback_surfaces``
accepts requests without a key when they come straight from this machine (loopback address and no
proxy forwarding header), the way a local Ollama does; the default list is empty.
"""

from __future__ import annotations

from typing import Literal, Mapping

from fastapi import Request

from lollms_server.api.deps import get_services
from lollms_server.api.middleware import first_headers
from lollms_server.core.apikeys import ApiKey, KeyRing

Surface = Literal["openai", "ollama"]
# scope["state"] entry RequestGuard leaves when a request's key matched: (surface, the KeyRing, the ApiKey),
# so the route's own auth dependency need not parse the headers and compare the key a second time
GUARD_MATCH = "lollms.guard_match"
SURFACES: tuple[str, ...] = ("openai", "ollama")
LOOPBACK_HOSTS: frozenset[str] = frozenset({"127.0.0.1", "::1", "localhost"})
_FORWARDING_HEADERS: tuple[bytes, ...] = (b"forwarded", b"x-forwarded-for", b"x-real-ip")
HeaderMap = Mapping[bytes, bytes]  # a request's headers: lower-case name -> value of its first occurrence
# (middleware.first_headers; what Headers.get answers, without building a Headers object)


def _header(first: HeaderMap, name: bytes) -> str:
    value = first.get(name)
    return value.decode("latin-1") if value is not None else ""


def presented_key(first: HeaderMap) -> str | None:
    scheme, _, token = _header(first, b"authorization").partition(" ")
    if scheme.lower() == "bearer":
        token = token.strip()
        if token:
            return token
    return _header(first, b"x-api-key") or None


def from_this_machine(client_host: str | None, first: HeaderMap) -> bool:
    """A direct loopback connection (a request relayed by a local proxy carries a forwarding header)."""
    return (client_host or "") in LOOPBACK_HOSTS and not any(h in first for h in _FORWARDING_HEADERS)


def keyless_allowed(surface: str, keyless_surfaces: list[str], client_host: str | None, first: HeaderMap) -> bool:
    """Whether a request without a key may pass on ``surface`` (listed, and straight from this machine)."""
    return surface in keyless_surfaces and presented_key(first) is None and from_this_machine(client_host, first)


def guard_match(request: Request, surface: str, ring: KeyRing) -> ApiKey | None:
    """The key RequestGuard matched for this request on ``surface`` with ``ring`` (None: it matched none)."""
    found = (request.scope.get("state") or {}).get(GUARD_MATCH)
    return found[2] if found is not None and found[0] == surface and found[1] is ring else None


def key_problem(request: Request, surface: Surface) -> Literal["missing", "invalid"] | None:
    """None when the request may pass (the matched key is kept in ``request.state.api_key``); else why not."""
    config = get_services(request).config
    ring = config.key_ring
    if not ring.enabled:
        return None
    matched = guard_match(request, surface, ring)
    if matched is not None:  # request.state.api_key = matched, without building a State (guard_match read the dict)
        request.scope["state"]["api_key"] = matched
        return None
    client = request.client.host if request.client else None
    first = first_headers(request.scope)
    if keyless_allowed(surface, config.keyless_loopback_surfaces, client, first):
        return None
    key = presented_key(first)
    if not key:
        return "missing"
    matched = ring.match(key)
    if matched is None:
        return "invalid"
    request.state.api_key = matched
    return None
