"""A small HTML to Markdown converter on the standard library's HTML parser."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_SKIP = {"script", "style", "noscript", "template", "svg", "head", "nav", "footer", "form", "iframe"}
_BLOCK = {"p", "div", "section", "article", "main", "header", "table", "tr", "blockquote", "figure", "br", "hr"}


class _Converter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False
        self._in_pre = False
        self._href: list[str | None] = []
        self._lists: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in _SKIP:
            self._skip += 1
            return
        if self._skip:
            return
        a = dict(attrs)
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self.out.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag in _BLOCK:
            self.out.append("\n\n")
        elif tag in ("ul", "ol"):
            self._lists.append(tag)
            self.out.append("\n")
        elif tag == "li":
            self.out.append("\n" + "  " * (len(self._lists) - 1) + ("1. " if self._lists[-1:] == ["ol"] else "- "))
        elif tag == "pre":
            self._in_pre = True
            self.out.append("\n\n```\n")
        elif tag == "code" and not self._in_pre:
            self.out.append("`")
        elif tag in ("strong", "b"):
            self.out.append("**")
        elif tag in ("em", "i"):
            self.out.append("*")
        elif tag == "a":
            self._href.append(a.get("href"))
            self.out.append("[")
        elif tag == "img" and a.get("alt"):
            self.out.append(f"![{a['alt']}]({a.get('src') or ''})")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
            return
        if self._skip:
            return
        if tag in ("ul", "ol") and self._lists:
            self._lists.pop()
            self.out.append("\n")
        elif tag == "pre":
            self._in_pre = False
            self.out.append("\n```\n\n")
        elif tag == "code" and not self._in_pre:
            self.out.append("`")
        elif tag in ("strong", "b"):
            self.out.append("**")
        elif tag in ("em", "i"):
            self.out.append("*")
        elif tag == "a":
            href = self._href.pop() if self._href else None
            self.out.append(f"]({href})" if href else "]")
        elif tag in ("h1", "h2", "h3", "h4", "h5", "h6") or tag in _BLOCK:
            self.out.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self._skip:
            return
        self.out.append(data if self._in_pre else re.sub(r"\s+", " ", data))


def html_to_markdown(html: str) -> tuple[str, str]:
    """(title, markdown) of an HTML page."""
    conv = _Converter()
    conv.feed(html)
    conv.close()
    text = "".join(conv.out)
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return conv.title.strip(), text
