"""Text and data helpers that workflows and bindings written for the specification import.

``extract_code_blocks`` and ``parse_thought_tags`` keep the return shapes spec-era code expects; the
thought parsing itself is the server's own (``core.thoughts``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Union

from lollms_server.core.thoughts import split_thoughts

_FENCE = "```"
_TAG = re.compile(r"[\w+#.\-]+")
_FILE_HINT = re.compile(r"<file_name>(.*?)</file_name>|^#+\s*filename:\s*(.+)$", re.IGNORECASE)
_SECTION_HINT = re.compile(r"<section>(.*?)</section>", re.IGNORECASE)


def encode_base64(data: bytes) -> str:
    """Bytes -> base64 text."""
    return base64.b64encode(data).decode("ascii")


def decode_base64(encoded: str) -> bytes:
    """Base64 text (a ``data:`` URL is accepted) -> bytes; ValueError when it is not valid base64."""
    text = encoded.split(",", 1)[1] if encoded.startswith("data:") and "," in encoded else encoded
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise ValueError("invalid base64 data") from exc


def parse_thought_tags(text: str) -> tuple[str, str | None]:
    """``(text without <think>…</think> blocks, the thoughts or None)``; an unclosed block counts as thoughts."""
    return split_thoughts(text)


def _hints(before: str) -> tuple[str, str]:
    lines = before.rstrip().splitlines()
    last = lines[-1].strip() if lines else ""
    file_match = _FILE_HINT.search(last)
    section_match = _SECTION_HINT.search(last)
    file_name = next((g for g in file_match.groups() if g), "").strip() if file_match else ""
    return file_name, section_match.group(1).strip() if section_match else ""


def extract_code_blocks(
    text: str, return_remaining_text: bool = False
) -> Union[list[dict[str, Any]], tuple[list[dict[str, Any]], str]]:
    """The fenced code blocks of ``text``, in order, each as a dict with ``index``, ``type`` (the language
    tag, ``unknown`` without one), ``content``, ``is_complete`` (False for a block cut off at the end),
    ``file_name`` and ``section`` (from a ``<file_name>…</file_name>`` / ``<section>…</section>`` line just
    before it). With ``return_remaining_text`` also returns the text outside the blocks."""
    blocks: list[dict[str, Any]] = []
    outside: list[str] = []
    pos = 0
    while (start := text.find(_FENCE, pos)) >= 0:
        outside.append(text[pos:start])
        line_end = text.find("\n", start + 3)
        header = text[start + 3: line_end if line_end >= 0 else len(text)].strip()
        tag = header if _TAG.fullmatch(header) else "unknown"
        body_start = (line_end + 1 if line_end >= 0 else len(text)) if tag != "unknown" or not header else start + 3
        end = text.find(_FENCE, body_start)
        complete = end >= 0
        content = text[body_start: end if complete else len(text)]
        file_name, section = _hints(text[:start])
        blocks.append({"index": len(blocks), "type": tag, "content": content.strip("\n").strip(),
                       "is_complete": complete, "file_name": file_name, "section": section})
        pos = end + 3 if complete else len(text)
    outside.append(text[pos:])
    if return_remaining_text:
        remaining = "\n\n".join(part.strip() for part in outside if part.strip())
        return blocks, remaining
    return blocks


def first_block_content(text: str, tag: str = "json") -> Any:
    """Content of the first block tagged ``tag`` (any block when ``tag`` is empty): parsed JSON for
    ``json``, else the text; None when there is no such block or the JSON does not parse."""
    answer, _ = split_thoughts(text)
    blocks = extract_code_blocks(answer)
    assert isinstance(blocks, list)
    chosen = next((b for b in blocks if not tag or b["type"].lower() == tag.lower()), None)
    if chosen is None and tag.lower() == "json":
        chosen = {"content": answer.strip()}  # a bare JSON answer without a fence
    if chosen is None:
        return None
    if tag.lower() != "json":
        return chosen["content"]
    try:
        return json.loads(chosen["content"])
    except json.JSONDecodeError:
        return None


def yes_no_of(text: str) -> bool | None:
    """Read a yes/no answer: a JSON ``{"answer": "yes"|"no"}`` (fenced or bare), else the first word."""
    parsed = first_block_content(text, "json")
    if isinstance(parsed, dict) and isinstance(parsed.get("answer"), str):
        word = parsed["answer"].strip().lower()
        if word in ("yes", "no"):
            return word == "yes"
    answer, _ = split_thoughts(text)
    words = re.findall(r"[a-z]+", answer.lower())
    if words and words[0] in ("yes", "no"):
        return words[0] == "yes"
    return None
