"""API-key check of the Ollama routes: same keys and headers as the other surfaces, Ollama's error shape."""

from __future__ import annotations

from fastapi import Request

from lollms_server.api.ollama.errors import OllamaError
from lollms_server.api.surface_auth import key_problem

MISSING_KEY = "unauthorized: send the API key as 'Authorization: Bearer KEY' or in the X-API-Key header"
WRONG_KEY = "unauthorized: invalid API key"


async def require_ollama_key(request: Request) -> None:
    problem = key_problem(request, "ollama")
    if problem == "missing":
        raise OllamaError(401, MISSING_KEY)
    if problem == "invalid":
        raise OllamaError(401, WRONG_KEY)
