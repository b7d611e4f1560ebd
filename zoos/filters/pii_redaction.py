"""PII and secret redaction: e-mail addresses, phone numbers, card numbers, IP addresses and API keys
are replaced before the prompt reaches the model and in the answer (streamed or not)."""

from __future__ import annotations

import re
from typing import Any, Optional

from pydantic import Field, SecretStr

from lollms_server.core.valves import FilterValves

PATTERNS: dict[str, str] = {
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
    "secret": r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}|\bAKIA[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{30,}\b"
              r"|\bxox[abpr]-[A-Za-z0-9-]{10,}|(?i:bearer)\s+[A-Za-z0-9._~+/-]{20,}=*",
    "card": r"\b(?:\d[ -]?){13,19}\b",
    "iban": r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b",
    "phone": r"(?<![\w+])\+?\d{1,3}[ .-]?\(?\d{2,4}\)?(?:[ .-]?\d{2,4}){2,3}\b",
    "ipv4": r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b",
}
HOLD_BACK = 64  # characters kept from a stream until more text shows whether they belong to a match


def _luhn(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return total % 10 == 0


class Filter:
    name = "pii_redaction"

    class Valves(FilterValves):
        kinds: list[str] = Field(list(PATTERNS), description=f"What to redact: any of {', '.join(PATTERNS)}.")
        redact_prompt: bool = Field(True, description="Redact the conversation before it reaches the model.")
        redact_answer: bool = Field(True, description="Redact the answer (each streamed chunk and the final text).")
        replacement: str = Field("[{kind} redacted]", max_length=100, description="Replacement; {kind} is the kind.")
        known_secrets: Optional[SecretStr] = Field(
            None, description="Comma-separated literal values always redacted (internal tokens, names…).",
        )

    def _redact(self, text: str, valves: "Filter.Valves") -> str:
        if not text:
            return text
        secrets = valves.known_secrets.get_secret_value() if valves.known_secrets else ""
        for literal in (s.strip() for s in secrets.split(",")):
            if literal:
                text = text.replace(literal, valves.replacement.format(kind="secret"))
        for kind in valves.kinds:
            pattern = PATTERNS.get(kind)
            if pattern is None:
                continue
            repl = valves.replacement.format(kind=kind)

            def sub(m: re.Match[str], kind: str = kind, repl: str = repl) -> str:
                if kind == "card" and not _luhn(re.sub(r"\D", "", m.group(0))):
                    return m.group(0)
                return repl

            text = re.sub(pattern, sub, text)
        return text

    def inlet(self, request: Any, ctx: Any) -> Any:
        if ctx.valves.redact_prompt:
            for m in request.messages:
                m["content"] = self._redact(m["content"], ctx.valves)
        return request

    def stream(self, event: dict[str, Any], ctx: Any) -> dict[str, Any]:
        if not ctx.valves.redact_answer:
            return event
        held = ctx.state.get("held", "") + str(event.get("content") or "")
        if event["type"] == "flush":
            ctx.state["held"] = ""
            return {**event, "content": self._redact(held, ctx.valves)}
        cut = len(held) - HOLD_BACK
        if cut <= 0:
            ctx.state["held"] = held
            return {**event, "content": ""}
        boundary = max(held.rfind(" ", 0, cut), held.rfind("\n", 0, cut))
        if boundary <= 0:
            ctx.state["held"] = held
            return {**event, "content": ""}
        ctx.state["held"] = held[boundary:]
        return {**event, "content": self._redact(held[:boundary], ctx.valves)}

    def outlet(self, outputs: list[dict[str, Any]], ctx: Any) -> list[dict[str, Any]]:
        if ctx.valves.redact_answer:
            for out in outputs:
                if out.get("type") == "text" and isinstance(out.get("data"), str):
                    out["data"] = self._redact(out["data"], ctx.valves)
        return outputs
