"""Fake of Ollama's native API: /api/chat (NDJSON), /api/tags, /api/show, /api/pull, /api/version."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from fakes.base import FakeServer


def ollama_error(status: int, message: str) -> dict[str, Any]:
    return {"error": message}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _full(name: str) -> str:
    return name if ":" in name else f"{name}:latest"


class FakeOllama(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.models: dict[str, dict[str, Any]] = {
            "llama-fake:latest": {"family": "llama", "capabilities": ["completion"], "context_length": 8192},
            "llava-fake:latest": {"family": "llava", "capabilities": ["completion", "vision"], "context_length": 4096},
            "qwen-tools-fake:latest": {"family": "qwen3", "capabilities": ["completion", "tools"], "context_length": 8192},
            "embed-fake:latest": {"family": "bert", "capabilities": ["embedding"], "context_length": 512},
        }
        self.pullable = {"newmodel:latest": {"family": "qwen", "capabilities": ["completion"], "context_length": 32768}}

    def routes(self) -> list[Route]:
        return [
            Route("/api/version", self.version, methods=["GET"]),
            Route("/api/tags", self.tags, methods=["GET"]),
            Route("/api/show", self.show, methods=["POST"]),
            Route("/api/pull", self.pull, methods=["POST"]),
            Route("/api/chat", self.chat, methods=["POST"]),
            Route("/api/embed", self.embed, methods=["POST"]),
        ]

    async def embed(self, request: Request) -> Response:
        """Deterministic vectors from each text's hash (4 numbers, or ``dimensions``)."""
        import hashlib

        rec = await self.record(request)
        if (err := await self.pre_answer(self.presented_key(request), ollama_error)) is not None:
            return err
        body = rec.body
        if "embedding" not in self.models.get(_full(body["model"]), {}).get("capabilities", []):
            return JSONResponse({"error": f"\"{body['model']}\" does not support embeddings"}, status_code=400)
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dims = int(body.get("dimensions") or 4)
        vectors = [[(hashlib.sha256(t.encode()).digest()[j] - 128) / 128 for j in range(dims)] for t in texts]
        return JSONResponse({"model": body["model"], "embeddings": vectors, "total_duration": 1000,
                             "load_duration": 10, "prompt_eval_count": sum(len(t.split()) for t in texts)})

    def tool_answer(self, body: dict[str, Any], user: str) -> Response:
        """Ollama answers a call in message.tool_calls (arguments as an object, no id), then done."""
        fn = body["tools"][0]["function"]
        args = {k: user for k in (fn.get("parameters") or {}).get("required", [])}
        msg = {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": fn["name"], "arguments": args}}]}
        counters = {"total_duration": 1000, "prompt_eval_count": 3, "eval_count": 5}
        if not body.get("stream", True):
            return JSONResponse({"model": body["model"], "created_at": _now(), "message": msg, "done": True,
                                 "done_reason": "stop", **counters})
        lines = [{"model": body["model"], "created_at": _now(), "message": msg, "done": False},
                 {"model": body["model"], "created_at": _now(), "message": {"role": "assistant", "content": ""},
                  "done": True, "done_reason": "stop", **counters}]
        return StreamingResponse(self.paced([(json.dumps(x) + "\n").encode() for x in lines]), media_type="application/x-ndjson")

    async def version(self, request: Request) -> Response:
        return JSONResponse({"version": "0.9.0-fake"})

    async def tags(self, request: Request) -> Response:
        await self.record(request)
        if (err := await self.pre_answer(self.presented_key(request), ollama_error)) is not None:
            return err
        return JSONResponse({"models": [
            {"name": n, "model": n, "modified_at": _now(), "size": 1234567, "digest": "sha256:" + "0" * 64,
             "details": {"parent_model": "", "format": "gguf", "family": m["family"], "families": [m["family"]],
                         "parameter_size": "1B", "quantization_level": "Q4_0"}}
            for n, m in self.models.items()]})

    async def show(self, request: Request) -> Response:
        rec = await self.record(request)
        if (err := await self.pre_answer(self.presented_key(request), ollama_error)) is not None:
            return err
        name = _full(rec.body.get("model") or rec.body.get("name") or "")
        m = self.models.get(name)
        if m is None:
            return JSONResponse({"error": f"model '{name}' not found"}, status_code=404)
        return JSONResponse({
            "modelfile": f"FROM {name}", "parameters": "stop \"<|end|>\"", "template": "{{ .Prompt }}",
            "details": {"parent_model": "", "format": "gguf", "family": m["family"], "families": [m["family"]],
                        "parameter_size": "1B", "quantization_level": "Q4_0"},
            "model_info": {"general.architecture": m["family"], f"{m['family']}.context_length": m["context_length"]},
            "capabilities": m["capabilities"], "modified_at": _now(),
        })

    async def pull(self, request: Request) -> Response:
        rec = await self.record(request)
        if (err := await self.pre_answer(self.presented_key(request), ollama_error)) is not None:
            return err
        name = _full(rec.body.get("model") or rec.body.get("name") or "")
        if name not in self.pullable:
            return JSONResponse({"error": "pull model manifest: file does not exist"}, status_code=500)
        digest = "sha256:" + "a" * 64
        lines: list[dict[str, Any]] = [{"status": "pulling manifest"}]
        lines += [{"status": f"pulling {digest[7:19]}", "digest": digest, "total": 1000, "completed": c} for c in (0, 500, 1000)]
        lines += [{"status": "verifying sha256 digest"}, {"status": "writing manifest"}, {"status": "success"}]
        self.models[name] = self.pullable.pop(name)
        if not rec.body.get("stream", True):
            return JSONResponse({"status": "success"})
        return StreamingResponse(self.paced([(json.dumps(x) + "\n").encode() for x in lines]), media_type="application/x-ndjson")

    async def chat(self, request: Request) -> Response:
        rec = await self.record(request)
        if (err := await self.pre_answer(self.presented_key(request), ollama_error)) is not None:
            return err
        body = rec.body
        if (broken := self.fault_answer("application/x-ndjson" if body.get("stream", True) else "application/json")) is not None:
            return broken
        name = _full(body["model"])
        if name not in self.models:
            return JSONResponse({"error": f"model \"{body['model']}\" not found, try pulling it first"}, status_code=404)
        user = next((m for m in reversed(body["messages"]) if m["role"] == "user"), {"content": ""})
        if body.get("tools") and body["messages"][-1]["role"] != "tool":
            if "tools" not in self.models[name]["capabilities"]:
                return JSONResponse({"error": f"registry.ollama.ai/library/{name} does not support tools"}, status_code=400)
            return self.tool_answer(body, user["content"])
        if body["messages"][-1]["role"] == "tool":
            user = {"content": f"tool {body['messages'][-1].get('tool_name')} said {body['messages'][-1]['content']}"}
        n_images = len(user.get("images") or [])
        text = f"echo: {user['content']}" + (f" [{n_images} image(s)]" if n_images else "")
        words = text.split(" ")
        pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
        limit = (body.get("options") or {}).get("num_predict")
        if isinstance(limit, int) and limit > 0:
            pieces = pieces[:limit]
        reason = "length" if isinstance(limit, int) and len(words) > limit else "stop"
        thinking = "Let me think." if body.get("think") else None
        counters = {"total_duration": 1000000, "load_duration": 1000, "prompt_eval_count": len(user["content"].split()),
                    "prompt_eval_duration": 1000, "eval_count": len(pieces), "eval_duration": 1000}
        if not body.get("stream", True):
            msg: dict[str, Any] = {"role": "assistant", "content": "".join(pieces)}
            if thinking:
                msg["thinking"] = thinking
            return JSONResponse({"model": body["model"], "created_at": _now(), "message": msg, "done": True,
                                 "done_reason": reason, **counters})
        lines: list[dict[str, Any]] = []
        if thinking:
            lines.append({"model": body["model"], "created_at": _now(), "message": {"role": "assistant", "content": "", "thinking": thinking}, "done": False})
        lines += [{"model": body["model"], "created_at": _now(), "message": {"role": "assistant", "content": p}, "done": False} for p in pieces]
        lines.append({"model": body["model"], "created_at": _now(), "message": {"role": "assistant", "content": ""},
                      "done": True, "done_reason": reason, **counters})
        frames = self.without_end([(json.dumps(x) + "\n").encode() for x in lines], 1)  # no_end: no done: true line
        return StreamingResponse(self.paced(frames), media_type="application/x-ndjson")
