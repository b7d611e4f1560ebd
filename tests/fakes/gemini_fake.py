"""Fake of the Gemini API (v1beta): models list/get, :generateContent and :streamGenerateContent?alt=sse."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from fakes.base import FakeServer

STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
MODELS: dict[str, dict[str, Any]] = {
    "gemini-fake-flash": {"inputTokenLimit": 1048576, "outputTokenLimit": 8192},
    "gemini-fake-pro": {"inputTokenLimit": 2097152, "outputTokenLimit": 65536},
    "embedding-fake": {"inputTokenLimit": 2048, "outputTokenLimit": 1, "methods": ["embedContent"]},
}


def gemini_error(status: int, message: str) -> dict[str, Any]:
    err: dict[str, Any] = {"code": status, "message": message, "status": STATUS_NAMES.get(status, "UNKNOWN")}
    if status == 400 and "API key" in message:  # Gemini's answer to a bad key
        err["message"] = "API key not valid. Please pass a valid API key. " + message
        err["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                           "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}]
    return {"error": err}


def model_json(name: str) -> dict[str, Any]:
    m = MODELS[name]
    return {"name": f"models/{name}", "version": "001", "displayName": name.replace("-", " ").title(),
            "description": f"fake model {name}", "inputTokenLimit": m["inputTokenLimit"], "outputTokenLimit": m["outputTokenLimit"],
            "supportedGenerationMethods": m.get("methods", ["generateContent", "countTokens"]), "temperature": 1.0, "topP": 0.95, "topK": 64}


class FakeGemini(FakeServer):
    key_error_status = 400

    @staticmethod
    def presented_key(request: Request) -> str | None:
        return request.headers.get("x-goog-api-key")

    def routes(self) -> list[Route]:
        return [
            Route("/v1beta/models", self.list_models, methods=["GET"]),
            Route("/v1beta/models/{rest:path}", self.model_call, methods=["GET", "POST"]),
        ]

    async def list_models(self, request: Request) -> Response:
        await self.record(request)
        if (err := await self.pre_answer(self.presented_key(request), gemini_error)) is not None:
            return err
        return JSONResponse({"models": [model_json(n) for n in MODELS]})

    async def model_call(self, request: Request) -> Response:
        rec = await self.record(request)
        if (err := await self.pre_answer(self.presented_key(request), gemini_error)) is not None:
            return err
        rest = request.path_params["rest"]
        name, _, method = rest.partition(":")
        if name not in MODELS:
            return JSONResponse(gemini_error(404, f"models/{name} is not found for API version v1beta"), status_code=404)
        if request.method == "GET" and not method:
            return JSONResponse(model_json(name))
        if method not in ("generateContent", "streamGenerateContent"):
            return JSONResponse(gemini_error(404, f"unknown method {method}"), status_code=404)
        body = rec.body
        user: dict[str, Any] = next((c for c in reversed(body["contents"]) if c.get("role", "user") == "user"), {"parts": []})
        text = " ".join(p["text"] for p in user["parts"] if "text" in p)
        images = [p for p in user["parts"] if "inlineData" in p]
        answer = f"echo: {text}" + (f" [{len(images)} image(s)]" if images else "")
        words = answer.split(" ")
        pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
        # proto JSON: the API accepts lowerCamel and snake_case field names alike
        tc = (body.get("generationConfig") or {}).get("thinkingConfig") or {}
        thinking = tc.get("includeThoughts") or tc.get("include_thoughts")
        usage = {"promptTokenCount": len(text.split()), "candidatesTokenCount": len(pieces),
                 "totalTokenCount": len(text.split()) + len(pieces)}

        def response(parts: list[dict[str, Any]], finish: str | None, with_usage: bool) -> dict[str, Any]:
            cand: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
            if finish:
                cand["finishReason"] = finish
            out: dict[str, Any] = {"candidates": [cand], "modelVersion": f"{name}-001", "responseId": "fake-response"}
            if with_usage:
                out["usageMetadata"] = usage
            return out

        thought_parts = [{"text": "Considering the request.", "thought": True}] if thinking else []
        if method == "generateContent":
            return JSONResponse(response(thought_parts + [{"text": "".join(pieces)}], "STOP", True))
        if request.query_params.get("alt") != "sse":
            return JSONResponse(gemini_error(400, "this fake only streams with alt=sse"), status_code=400)
        events = [response(thought_parts, None, False)] if thought_parts else []
        events += [response([{"text": p}], "STOP" if i == len(pieces) - 1 else None, i == len(pieces) - 1) for i, p in enumerate(pieces)]
        frames = [f"data: {json.dumps(e)}\r\n\r\n".encode() for e in events]
        return StreamingResponse(self.paced(frames), media_type="text/event-stream")
