"""``ctx.llm``: extensions call a model through the server's own pipeline (bindings, filters, usage, limits).

Messages in (OpenAI-style ``{"role", "content"}`` dicts); text, JSON or a stream of text out. Pass the
incoming ``request`` to run with its caller's API key (limits, usage) and its own provider credentials
(``X-Provider-Api-Key``), with the server's instance configuration as the fallback.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Literal

from lollms_server.core.contract import GenerateRequest, InputData
from lollms_server.core.errors import BackendError, BadRequestError, LollmsError
from lollms_server.core.telemetry import Caller

if TYPE_CHECKING:
    from lollms_server.core.services import Services

_ROLES = {"system": "system_context", "user": "user_prompt", "assistant": "assistant_reply"}
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S)


def _request(messages: list[dict[str, Any]], binding: str | None, model: str | None, personality: str | None,
             params: dict[str, Any] | None, stream: bool) -> GenerateRequest:
    items = []
    for i, m in enumerate(messages):
        role = _ROLES.get(str(m.get("role")))
        if role is None or not isinstance(m.get("content"), str):
            raise BadRequestError(f"messages[{i}] needs role system/user/assistant and a text content")
        items.append(InputData(type="text", role=role, data=m["content"]))
    return GenerateRequest(input_data=items, binding_name=binding, model_name=model, personality=personality,
                           parameters=params or {}, stream=stream)


def parse_json_answer(text: str) -> Any:
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1)
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        start, end = body.find("{"), body.rfind("}")
        if 0 <= start < end:
            try:
                return json.loads(body[start:end + 1])
            except json.JSONDecodeError:
                pass
    raise BackendError(f"the model did not answer valid JSON: {text[:200]!r}")


class LLMAccess:
    def __init__(self, services: Callable[[], "Services"], extension: str) -> None:
        self._services = services
        self.extension = extension

    def _caller_and_credentials(self, request: Any) -> tuple[Caller, dict[str, str] | None]:
        if request is None:
            return Caller(surface=f"ext:{self.extension}"), None
        from lollms_server.api.byok import credentials_from_headers

        state = getattr(request, "state", None)
        caller = Caller(surface=f"ext:{self.extension}", key=getattr(state, "api_key", None),
                        request_id=None)
        return caller, credentials_from_headers(request.headers)

    async def _plan(self, messages: list[dict[str, Any]], binding: str | None, model: str | None,
                    personality: str | None, params: dict[str, Any] | None, stream: bool, request: Any) -> Any:
        from lollms_server.api import byok

        services = self._services()
        caller, creds = self._caller_and_credentials(request)
        plan = await services.generation.plan(_request(messages, binding, model, personality, params, stream),
                                              credentials=creds, caller=caller)
        byok.check_allowed(plan.binding, plan.binding_name, creds)
        return services, plan, creds

    async def complete(self, messages: list[dict[str, Any]], *, binding: str | None = None, model: str | None = None,
                       personality: str | None = None, params: dict[str, Any] | None = None,
                       response_format: Literal["text", "json"] = "text", request: Any = None) -> Any:
        """The answer text (or the parsed JSON with ``response_format="json"``)."""
        from lollms_server.api import byok

        services, plan, creds = await self._plan(messages, binding, model, personality, params, False, request)
        with byok.masked(creds):
            outputs = await services.generation.run(plan)
        errors = [o for o in outputs if o.type == "error"]
        if errors:
            raise LollmsError(str(errors[0].data))
        text = "".join(str(o.data) for o in outputs if o.type == "text" and o.data is not None)
        return parse_json_answer(text) if response_format == "json" else text

    async def stream(self, messages: list[dict[str, Any]], *, binding: str | None = None, model: str | None = None,
                     personality: str | None = None, params: dict[str, Any] | None = None,
                     request: Any = None) -> AsyncIterator[str]:
        """Answer text piece by piece; an error in the stream raises."""
        from lollms_server.api import byok

        services, plan, creds = await self._plan(messages, binding, model, personality, params, True, request)
        async for chunk in byok.masked_stream(creds, services.generation.stream(plan)):
            if chunk.type == "chunk" and isinstance(chunk.content, str) and chunk.content:
                yield chunk.content
            elif chunk.type == "error":
                raise BackendError(str(chunk.content))
