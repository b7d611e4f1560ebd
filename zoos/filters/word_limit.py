"""Word limit and word count: refuses prompts longer than a limit (per server and per API key) and adds
the answer's word count to its metadata."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from lollms_server.core.filters import FilterRejected
from lollms_server.core.valves import FilterValves


class Filter:
    name = "word_limit"

    class Valves(FilterValves):
        max_prompt_words: int = Field(0, ge=0, description="Refuse a last user message longer than this (0 = no limit).")
        count_answer_words: bool = Field(True, description="Add metadata.word_count to text outputs.")

    class UserValves(BaseModel):
        max_prompt_words: int = Field(0, ge=0, description="A lower limit for this API key (0 = the server's).")

    def inlet(self, request: Any, ctx: Any) -> Any:
        limits = [n for n in (ctx.valves.max_prompt_words, getattr(ctx.user_valves, "max_prompt_words", 0)) if n]
        if not limits:
            return request
        last_user = next((m["content"] for m in reversed(request.messages) if m["role"] == "user"), "")
        words = len(last_user.split())
        if words > min(limits):
            raise FilterRejected(f"the prompt has {words} words; the limit is {min(limits)}")
        return request

    def outlet(self, outputs: list[dict[str, Any]], ctx: Any) -> list[dict[str, Any]]:
        if ctx.valves.count_answer_words:
            for out in outputs:
                if out.get("type") == "text" and isinstance(out.get("data"), str):
                    out["metadata"] = {**(out.get("metadata") or {}), "word_count": len(out["data"].split())}
        return outputs
