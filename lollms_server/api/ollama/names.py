"""Ollama model names (``name:tag``) onto this server's model ids, and the model entries Ollama lists.

A model id of the OpenAI-compatible surface (``instance``, ``instance/model``, ``personality:name``,
``…@personality``, aliases) is an Ollama name as it is; the tag ``:latest`` is optional and dropped. Ids
are listed with ``:latest`` appended when they carry no tag of their own.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any

from lollms_server.api.openai_compat.errors import OpenAIError
from lollms_server.api.openai_compat.ids import ModelRef, resolve_model
from lollms_server.api.ollama.errors import OllamaError
from lollms_server.core.services import Services

LATEST = ":latest"
STARTED_AT = datetime.now(timezone.utc)


def now_iso() -> str:
    return iso(datetime.now(timezone.utc))


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def model_id_of(name: str) -> str:
    text = name.strip()
    return text[: -len(LATEST)] if text.endswith(LATEST) else text


def ollama_name(model_id: str) -> str:
    """The listed name: the id with ``:latest`` unless its last path part already has a tag."""
    return model_id if ":" in model_id.rsplit("/", 1)[-1] else model_id + LATEST


def digest_of(model_id: str) -> str:
    """A stable identifier of a listed name (Ollama lists a content digest; ours names the id)."""
    return hashlib.sha256(model_id.encode()).hexdigest()


async def resolve(services: Services, name: str, generation_type: str = "ttt") -> ModelRef:
    """The ModelRef an Ollama name selects; 404 in Ollama's words for an unknown one."""
    if not name.strip():
        raise OllamaError(400, "model is required")
    try:
        return await resolve_model(services, model_id_of(name), generation_type)
    except OpenAIError as exc:
        if exc.status == 404:
            raise OllamaError(404, f"model '{name}' not found; list the names this server offers with GET /api/tags") from None
        raise


def details(family: str, fmt: str = "", parameter_size: str = "", quantization: str = "") -> dict[str, Any]:
    return {"parent_model": "", "format": fmt, "family": family, "families": [family] if family else None,
            "parameter_size": parameter_size, "quantization_level": quantization}
