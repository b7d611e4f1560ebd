"""Fake of the OpenAI REST API: /v1/models, /v1/chat/completions (JSON and SSE), /v1/images/generations|edits."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from fakes.base import LONE_SURROGATE, FakeServer, tiny_png

MODELS = ["gpt-fake", "gpt-fake-reasoner", "dall-e-fake"]


def openai_error(status: int, message: str) -> dict[str, Any]:
    kinds = {401: "invalid_api_key", 429: "rate_limit_exceeded", 500: "server_error"}
    return {"error": {"message": message, "type": "invalid_request_error" if status < 500 else "server_error",
                      "param": None, "code": kinds.get(status)}}


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, list):
                return " ".join(p.get("text", "") for p in c if p.get("type") == "text")
            return str(c)
    return ""


class FakeOpenAI(FakeServer):
    def routes(self) -> list[Route]:
        return [
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/v1/chat/completions", self.chat, methods=["POST"]),
            Route("/v1/embeddings", self.embeddings, methods=["POST"]),
            Route("/v1/images/generations", self.images, methods=["POST"]),
            Route("/v1/images/edits", self.images, methods=["POST"]),
        ]

    async def models(self, request: Request) -> Response:
        await self.record(request)
        if (err := await self.pre_answer(self.presented_key(request), openai_error)) is not None:
            return err
        return JSONResponse({"object": "list", "data": [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "fake-org"} for m in MODELS]})

    async def chat(self, request: Request) -> Response:
        rec = await self.record(request)
        if (err := await self.pre_answer(self.presented_key(request), openai_error)) is not None:
            return err
        body = rec.body
        if (broken := self.fault_answer("text/event-stream" if body.get("stream") else "application/json")) is not None:
            return broken
        model = body["model"]
        if model not in MODELS:
            return JSONResponse(openai_error(404, f"The model `{model}` does not exist"), status_code=404)
        user = last_user_text(body["messages"])
        if body.get("tools") and body.get("tool_choice") != "none" and body["messages"][-1].get("role") != "tool":
            return self.tool_call_answer(body, model, user)
        if body["messages"][-1].get("role") == "tool":
            user = "tool said " + str(body["messages"][-1].get("content"))
        images = sum(1 for m in body["messages"] if isinstance(m.get("content"), list)
                     for p in m["content"] if p.get("type") == "image_url")
        words = f"echo: {user}" + (f" [{images} image(s)]" if images else "")
        if self.behaviour.lone_surrogate:
            words += LONE_SURROGATE
        pieces = words.split(" ")
        pieces = [p if i == 0 else " " + p for i, p in enumerate(pieces)]
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        reason = "stop"
        if isinstance(limit, int) and len(pieces) > limit:  # one piece = one token here
            pieces, reason = pieces[:limit], "length"
        reasoning = "Thinking about it." if model == "gpt-fake-reasoner" else None
        usage = {"prompt_tokens": len(user.split()), "completion_tokens": len(pieces), "total_tokens": len(user.split()) + len(pieces)}
        cid, created = "chatcmpl-fake", int(time.time())
        if not body.get("stream"):
            msg: dict[str, Any] = {"role": "assistant", "content": "".join(pieces)}
            if reasoning:
                msg["reasoning_content"] = reasoning
            answer = {"id": cid, "object": "chat.completion", "created": created, "model": model,
                      "choices": [{"index": 0, "message": msg, "finish_reason": reason}], "usage": usage}
            # json.dumps escapes a lone surrogate as \\ud83d (JSONResponse's UTF-8 encoding would fail on it)
            return Response(json.dumps(answer), media_type="application/json")

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            data = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return f"data: {json.dumps(data)}\n\n".encode()

        frames = [chunk({"role": "assistant", "content": ""})]
        if reasoning:
            frames += [chunk({"reasoning_content": r}) for r in ("Thinking ", "about it.")]
        frames += [chunk({"content": p}) for p in pieces]
        ending = [chunk({}, reason)]
        if (body.get("stream_options") or {}).get("include_usage"):
            tail = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [], "usage": usage}
            ending.append(f"data: {json.dumps(tail)}\n\n".encode())
        ending.append(b"data: [DONE]\n\n")
        frames = self.without_end(frames + ending, len(ending))  # no_end: cut before the finish reason and [DONE]
        return StreamingResponse(self.paced(frames), media_type="text/event-stream")

    def tool_call_answer(self, body: dict[str, Any], model: str, user: str) -> Response:
        """Call the named tool (else the first) with every required string parameter set to the user text."""
        choice = body.get("tool_choice")
        name = choice["function"]["name"] if isinstance(choice, dict) else body["tools"][0]["function"]["name"]
        tool = next(t for t in body["tools"] if t["function"]["name"] == name)
        params = tool["function"].get("parameters") or {}
        args = json.dumps({k: user for k in params.get("required", [])})
        call = {"id": "call_fake_1", "type": "function", "function": {"name": name, "arguments": args}}
        cid, created = "chatcmpl-fake-tools", int(time.time())
        if not body.get("stream"):
            return JSONResponse({"id": cid, "object": "chat.completion", "created": created, "model": model,
                                 "choices": [{"index": 0, "finish_reason": "tool_calls",
                                              "message": {"role": "assistant", "content": None, "tool_calls": [call]}}],
                                 "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}})

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            data = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return f"data: {json.dumps(data)}\n\n".encode()

        head = {"index": 0, "id": call["id"], "type": "function", "function": {"name": name, "arguments": ""}}
        frames = [chunk({"role": "assistant", "content": None, "tool_calls": [head]})]
        frames += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[i:i + 5]}}]}) for i in range(0, len(args), 5)]
        frames += [chunk({}, "tool_calls"), b"data: [DONE]\n\n"]
        return StreamingResponse(self.paced(frames), media_type="text/event-stream")

    async def embeddings(self, request: Request) -> Response:
        """Deterministic vectors from each text's hash; honours dimensions and encoding_format."""
        import base64
        import hashlib
        import struct

        rec = await self.record(request)
        if (err := await self.pre_answer(self.presented_key(request), openai_error)) is not None:
            return err
        body = rec.body
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dims = int(body.get("dimensions") or 8)
        data = []
        for i, text in enumerate(texts):
            digest = hashlib.sha256(str(text).encode()).digest()
            vec = [(digest[j % 32] - 128) / 128 for j in range(dims)]
            emb: Any = base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode() if body.get("encoding_format") == "base64" else vec
            data.append({"object": "embedding", "index": i, "embedding": emb})
        tokens = sum(len(str(t).split()) for t in texts)
        return JSONResponse({"object": "list", "data": data, "model": body["model"],
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def images(self, request: Request) -> Response:
        rec = await self.record(request)
        if (err := await self.pre_answer(self.presented_key(request), openai_error)) is not None:
            return err
        if (broken := self.fault_answer("application/json")) is not None:
            return broken
        body = rec.body or {}
        n = int(body.get("n") or 1)
        if not str(body.get("prompt") or "").strip():
            return JSONResponse(openai_error(400, "prompt is required"), status_code=400)
        fmt = body.get("response_format") or "url"
        data = []
        for i in range(n):
            item: dict[str, Any] = {"revised_prompt": f"revised: {body['prompt']}"}
            if fmt == "b64_json":
                item["b64_json"] = tiny_png((40 * i % 256, 100, 200))
            else:
                item["url"] = "http://127.0.0.1:1/not-fetched.png"
            data.append(item)
        return JSONResponse({"created": int(time.time()), "data": data})
