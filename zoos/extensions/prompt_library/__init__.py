"""Prompt library: named prompt templates with {placeholders}, stored on the server, run through any model,
listed by a small web UI module, and offered to models as the tool prompt_library.get_prompt."""

from __future__ import annotations

import asyncio
import json
import re
import string
from pathlib import Path
from typing import Any, Optional

from fastapi import Body, Request
from pydantic import BaseModel, Field

__version__ = "1.0.0"
UI_MODULE = "ui/index.js"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_PROMPTS = 500


class Valves(BaseModel):
    storage_file: str = Field("prompt_library.json", description="File in the server's config folder holding the prompts.")


class PromptIn(BaseModel):
    name: str = Field(..., max_length=64, description="Letters, digits, '_', '.' or '-'.")
    template: str = Field(..., max_length=20_000, description="Text with {placeholders}.")
    description: str = Field("", max_length=500)


class RunIn(BaseModel):
    variables: dict[str, str] = Field(default_factory=dict, description="Values of the template's placeholders.")
    binding: Optional[str] = Field(None, max_length=200, description="Binding instance (default: the ttt default).")
    model: Optional[str] = Field(None, max_length=500)


def placeholders(template: str) -> list[str]:
    return sorted({f for _, f, _, _ in string.Formatter().parse(template) if f})


class Library:
    """Prompts in one JSON file, written atomically; all file work off the event loop."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = asyncio.Lock()

    def _read(self) -> dict[str, dict[str, str]]:
        if not self.path.is_file():
            return {}
        data = json.loads(self.path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}

    def _write(self, data: dict[str, dict[str, str]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
        tmp.replace(self.path)

    async def all(self) -> dict[str, dict[str, str]]:
        return await asyncio.to_thread(self._read)

    async def put(self, p: PromptIn) -> None:
        async with self._lock:
            data = await asyncio.to_thread(self._read)
            if p.name not in data and len(data) >= MAX_PROMPTS:
                raise ValueError(f"the library holds {MAX_PROMPTS} prompts at most")
            data[p.name] = {"template": p.template, "description": p.description}
            await asyncio.to_thread(self._write, data)

    async def delete(self, name: str) -> bool:
        async with self._lock:
            data = await asyncio.to_thread(self._read)
            if data.pop(name, None) is None:
                return False
            await asyncio.to_thread(self._write, data)
            return True


def install(ctx: Any) -> None:

    from lollms_server.core.errors import BadRequestError, NotFoundError
    from lollms_server.core.paths import resolve_inside

    def library() -> Library:
        folder = ctx.services.config.paths.config_dir
        return Library(resolve_inside(folder, ctx.valves.storage_file))

    def check_name(name: str) -> None:
        if not NAME_RE.match(name):
            raise BadRequestError("a prompt name is 1-64 letters, digits, '_', '.' or '-'")

    async def list_prompts() -> dict[str, Any]:
        """Every prompt with its placeholders."""
        data = await library().all()
        return {"prompts": [{"name": n, **p, "placeholders": placeholders(p["template"])} for n, p in sorted(data.items())]}

    async def save_prompt(body: PromptIn = Body(...)) -> dict[str, Any]:
        """Add or replace a prompt."""
        check_name(body.name)
        try:
            placeholders(body.template)
            await library().put(body)
        except ValueError as exc:
            raise BadRequestError(f"cannot save the prompt: {exc}") from exc
        return {"saved": body.name, "placeholders": placeholders(body.template)}

    async def delete_prompt(name: str) -> dict[str, Any]:
        check_name(name)
        if not await library().delete(name):
            raise NotFoundError(f"no prompt named '{name}'")
        return {"deleted": name}

    async def run_prompt(name: str, request: Request, body: RunIn = Body(...)) -> dict[str, Any]:
        """Fill a prompt's placeholders and run it through a model (with the caller's key and credentials)."""
        check_name(name)
        prompt = (await library().all()).get(name)
        if prompt is None:
            raise NotFoundError(f"no prompt named '{name}'")
        missing = [p for p in placeholders(prompt["template"]) if p not in body.variables]
        if missing:
            raise BadRequestError(f"missing variables: {', '.join(missing)}")
        text = prompt["template"].format(**body.variables)
        answer = await ctx.llm.complete([{"role": "user", "content": text}], binding=body.binding, model=body.model,
                                        request=request)
        return {"name": name, "prompt": text, "answer": answer}

    async def get_prompt(name: str) -> str:
        """Get a prompt template of the library by name.

        Args:
            name: The prompt's name.
        """
        prompt = (await library().all()).get(name)
        return prompt["template"] if prompt else f"no prompt named '{name}'"

    ctx.get("prompts", list_prompts, summary="List the prompt library")
    ctx.post("prompts", save_prompt, summary="Add or replace a prompt")
    ctx.add_route("prompts/{name}", delete_prompt, methods=("DELETE",), summary="Delete a prompt")
    ctx.post("prompts/{name}/run", run_prompt, summary="Run a prompt through a model")
    ctx.add_static("ui")
    ctx.add_tool(get_prompt)
