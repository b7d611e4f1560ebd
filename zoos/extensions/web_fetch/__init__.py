"""Web page to Markdown: fetches a page (only once an operator enables it) and gives its text as Markdown,
over POST /ext/web_fetch/fetch and as the tool web_fetch.fetch_page."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from fastapi import Body
from pydantic import BaseModel, Field


__version__ = "1.0.0"


class Valves(BaseModel):
    enabled: bool = Field(False, description="Fetch pages at all (off until an operator turns it on).")
    allowed_domains: list[str] = Field(default_factory=list, description="Only these hosts (and their subdomains); empty = any.")
    allow_private_networks: bool = Field(False, description="Also fetch from loopback, private and link-local addresses.")
    max_bytes: int = Field(2_000_000, ge=1_000, le=20_000_000, description="Largest page read.")
    timeout: float = Field(10.0, gt=0, le=60, description="Seconds for the whole fetch.")
    max_markdown_chars: int = Field(20_000, ge=100, le=200_000, description="Markdown longer than this is cut.")


class FetchRefused(Exception):
    pass


class FetchBody(BaseModel):
    url: str = Field(..., max_length=4000, description="http(s) address of the page.")


def _host_allowed(host: str, valves: Valves) -> bool:
    if not valves.allowed_domains:
        return True
    host = host.lower().rstrip(".")
    return any(host == d.lower() or host.endswith("." + d.lower()) for d in valves.allowed_domains)


async def _check_address(host: str, port: int, valves: Valves) -> None:
    if valves.allow_private_networks:
        return
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    for info in infos:
        addr = ipaddress.ip_address(info[4][0])
        if addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_reserved or addr.is_multicast:
            raise FetchRefused(f"{host} resolves to a private address ({addr}); allow_private_networks is off")


async def fetch_markdown(url: str, valves: Valves) -> dict[str, Any]:
    if not valves.enabled:
        raise FetchRefused("web_fetch is disabled: an operator must set its 'enabled' valve to true")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchRefused("the url must be an http:// or https:// address")
    if not _host_allowed(parts.hostname, valves):
        raise FetchRefused(f"{parts.hostname} is not in allowed_domains")
    await _check_address(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), valves)
    import httpx  # on the first fetch, not when the server starts

    async with httpx.AsyncClient(timeout=valves.timeout, follow_redirects=False) as client:
        async with client.stream("GET", url, headers={"Accept": "text/html, text/plain;q=0.9"}) as r:
            if r.status_code >= 400:
                raise FetchRefused(f"the server answered {r.status_code}")
            if r.is_redirect:
                raise FetchRefused(f"the page redirects to {r.headers.get('location')}; fetch that address instead")
            body = b""
            async for piece in r.aiter_bytes():
                body += piece
                if len(body) > valves.max_bytes:
                    raise FetchRefused(f"the page is larger than max_bytes ({valves.max_bytes})")
            content_type = r.headers.get("content-type", "")
            text = body.decode(r.encoding or "utf-8", errors="replace")
    from .markdown import html_to_markdown  # its HTML parser on the first fetch, not when the server starts

    title, markdown = html_to_markdown(text) if "html" in content_type or "<html" in text[:500].lower() else ("", text)
    cut = len(markdown) > valves.max_markdown_chars
    return {"url": url, "title": title, "markdown": markdown[: valves.max_markdown_chars], "truncated": cut}


def install(ctx: Any) -> None:
    from lollms_server.core.errors import BadRequestError

    def valves() -> Valves:
        assert isinstance(ctx.valves, Valves)
        return ctx.valves

    async def fetch(body: FetchBody = Body(...)) -> dict[str, Any]:
        """Fetch a web page and return its title and Markdown text."""
        import httpx

        try:
            return await fetch_markdown(body.url, valves())
        except FetchRefused as exc:
            raise BadRequestError(str(exc)) from exc
        except httpx.HTTPError as exc:
            raise BadRequestError(f"could not fetch {body.url}: {type(exc).__name__}: {exc}") from exc

    async def fetch_page(url: str) -> str:
        """Fetch a web page and return its content as Markdown.

        Args:
            url: The http or https address of the page.
        """
        import httpx

        try:
            page = await fetch_markdown(url, valves())
        except (FetchRefused, httpx.HTTPError) as exc:
            return f"could not fetch {url}: {exc}"
        return f"# {page['title']}\n\n{page['markdown']}" if page["title"] else str(page["markdown"])

    ctx.post("fetch", fetch, summary="Fetch a web page as Markdown (when the extension is enabled)")
    ctx.add_tool(fetch_page)
