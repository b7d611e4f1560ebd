"""Model name aliases: the names clients use by default (OpenAI's) mapped onto this server's instances.

An alias points at a generation type (its configured default instance serves it) or at a model id of
the OpenAI-compatible scheme (``instance``, ``instance/model``, ``personality:name``). The built-in
table below is the only declaration of the defaults; ``model_aliases`` in the main config adds to it or
overrides it (an empty value removes an alias).
"""

from __future__ import annotations

from typing import Mapping

# generation types an alias may point at (their default instance, defaults.<type>_binding)
ALIAS_TYPES: tuple[str, ...] = ("ttt", "tti", "tts", "stt", "embedding")

BUILTIN_ALIASES: dict[str, str] = {
    **{name: "ttt" for name in (
        "gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4-turbo", "gpt-4", "gpt-3.5-turbo",
        "gpt-5", "gpt-5-mini", "gpt-5-nano", "o1", "o1-mini", "o3", "o3-mini", "o4-mini")},
    **{name: "tts" for name in ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")},
    **{name: "stt" for name in ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")},
    **{name: "tti" for name in ("dall-e-3", "dall-e-2", "gpt-image-1")},
    **{name: "embedding" for name in ("text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002")},
}


def merged_aliases(configured: Mapping[str, object]) -> dict[str, str]:
    """Built-in aliases overlaid with the configured ones; empty configured values remove an alias."""
    merged = dict(BUILTIN_ALIASES)
    for name, target in configured.items():
        if target is None or str(target).strip() == "":
            merged.pop(str(name), None)
        else:
            merged[str(name)] = str(target).strip()
    return merged
