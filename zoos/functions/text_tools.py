"""Small text utilities."""

from __future__ import annotations

import re


async def word_count(text: str) -> int:
    """Count the words in a text.

    Args:
        text: The text to count.
    """
    return len(re.findall(r"\b\w+\b", text))


async def extract_urls(text: str, limit: int = 20) -> list[str]:
    """List the http(s) URLs found in a text, in order, without duplicates.

    Args:
        text: Text to search.
        limit: Maximum number of URLs to return.
    """
    seen: list[str] = []
    for url in re.findall(r"https?://[^\s<>\"')]+", text):
        if url not in seen:
            seen.append(url)
    return seen[: max(0, limit)]
