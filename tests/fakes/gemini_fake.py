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
        if method in ("batchEmbedContents", "embedContent"):
            return self.embed(name, rec.body, method)
        if method not in ("generateContent", "streamGenerateContent"):
            return JSONResponse(gemini_error(404, f"unknown method {method}"), status_code=404)
        body = rec.body
        if (broken := self.fault_answer("text/event-stream" if method == "streamGenerateContent" else "application/json")) is not None:
            return broken
        user: dict[str, Any] = next((c for c in reversed(body["contents"]) if c.get("role", "user") == "user"), {"parts": []})
        text = " ".join(p["text"] for p in user["parts"] if "text" in p)
        images = [p for p in user["parts"] if "inlineData" in p]
        answer = f"echo: {text}" + (f" [{len(images)} image(s)]" if images else "")
        words = answer.split(" ")
        pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
        config = body.get("generationConfig") or {}
        limit = config.get("maxOutputTokens", config.get("max_output_tokens"))
        finish: str | None = "STOP"
        if isinstance(limit, int) and len(pieces) > limit:  # one piece = one token here
            pieces, finish = pieces[:limit], "MAX_TOKENS"
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
        declared = [d for t in body.get("tools") or [] for d in t.get("functionDeclarations") or t.get("function_declarations") or []]
        last = body["contents"][-1]["parts"] if body["contents"] else []
        fc_config = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
        if declared and fc_config.get("mode") != "NONE" and not any("functionResponse" in p for p in last):
            allowed = fc_config.get("allowedFunctionNames") or [declared[0]["name"]]
            decl = next(d for d in declared if d["name"] == allowed[0])
            schema = decl.get("parametersJsonSchema") or decl.get("parameters_json_schema") or decl.get("parameters") or {}
            call = {"functionCall": {"name": decl["name"], "args": {k: text for k in schema.get("required", [])}}}
            answer_json = response([call], "STOP", True)
            if method == "generateContent":
                return JSONResponse(answer_json)
            return StreamingResponse(self.paced([f"data: {json.dumps(answer_json)}\r\n\r\n".encode()]), media_type="text/event-stream")
        results = [p["functionResponse"] for p in last if "functionResponse" in p]
        if results:
            pieces = [f"function {results[0]['name']} returned {json.dumps(results[0]['response'])}"]
        if method == "generateContent":
            return JSONResponse(response(thought_parts + [{"text": "".join(pieces)}], finish, True))
        if request.query_params.get("alt") != "sse":
            return JSONResponse(gemini_error(400, "this fake only streams with alt=sse"), status_code=400)
        events = [response(thought_parts, None, False)] if thought_parts else []
        if self.behaviour.fault == "no_end":
            finish = None
        events += [response([{"text": p}], finish if i == len(pieces) - 1 else None, i == len(pieces) - 1) for i, p in enumerate(pieces)]
        frames = [f"data: {json.dumps(e)}\r\n\r\n".encode() for e in events]
        return StreamingResponse(self.paced(frames), media_type="text/event-stream")

    def embed(self, name: str, body: dict[str, Any], method: str) -> Response:
        """embedContent / batchEmbedContents: deterministic values from each text's hash."""
        import hashlib

        if "embedContent" not in MODELS[name].get("methods", []):
            return JSONResponse(gemini_error(400, f"models/{name} does not support embedContent"), status_code=400)
        requests = body.get("requests") or [body]
        out = []
        for req in requests:
            text = " ".join(p.get("text", "") for p in (req.get("content") or {}).get("parts", []))
            dims = int(req.get("outputDimensionality") or 6)
            digest = hashlib.sha256(text.encode()).digest()
            out.append({"values": [(digest[j % 32] - 128) / 128 for j in range(dims)]})
        return JSONResponse({"embeddings": out} if method == "batchEmbedContents" else {"embedding": out[0]})
