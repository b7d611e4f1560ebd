"""dummy_binding: deterministic outputs for tests and demos (echo, think, PNG, WAV, failures)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import math
import struct
import wave
from collections import deque
from typing import Any, AsyncIterator, ClassVar

from lollms_server.core.bindings.base import Binding, BindingResult, GenerationTask, StreamEvent
from lollms_server.core.errors import BackendError, BadRequestError, NotFoundError, echo
from lollms_server.core.tools import ToolCall, call_event, tool_call_output

BOS, EOS, OFFSET = 1, 2, 3
HISTORY_SIZE = 32  # tasks kept for tests to inspect (the most recent ones)
MODELS: dict[str, dict[str, Any]] = {
    "dummy-echo": {"supports_vision": False},
    "dummy-vision": {"supports_vision": True},
}


def _image_size(params: dict[str, Any]) -> tuple[int, int]:
    size = params.get("image_size") or params.get("size")
    if isinstance(size, str) and "x" in size:
        w, h = size.lower().split("x", 1)
        try:
            width, height = int(w), int(h)
        except ValueError:
            raise BadRequestError(f"image size must look like 512x512, got {size[:40]!r}") from None
    else:
        width, height = int(params.get("width", 64)), int(params.get("height", 64))
    if not (1 <= width <= 2048 and 1 <= height <= 2048):
        raise BadRequestError("image size must be between 1x1 and 2048x2048")
    return width, height


def make_png(prompt: str, width: int, height: int) -> str:
    from PIL import Image

    digest = hashlib.sha256(prompt.encode()).digest()
    img = Image.new("RGB", (width, height), (digest[0], digest[1], digest[2]))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def make_wav(text: str, rate: int = 16000) -> str:
    seconds = min(5.0, 0.1 + 0.02 * len(text))
    freq = 220 + (sum(text.encode()) % 440)
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / rate))) for i in range(int(seconds * rate))
    )
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return base64.b64encode(buf.getvalue()).decode()


class DummyBinding(Binding):
    binding_type_name: ClassVar[str] = "dummy_binding"
    input_roles: ClassVar[frozenset[str]] = frozenset({"user_prompt", "system_context", "assistant_reply", "input_image"})

    def __init__(self, config: dict[str, Any], resource_manager: Any) -> None:
        super().__init__(config, resource_manager)
        self.mode: str = str(config.get("mode", "echo"))
        self.delay = float(config.get("delay", 0.0))
        self.chunk_delay = float(config.get("stream_chunk_delay", 0.0))
        self.history: deque[GenerationTask] = deque(maxlen=HISTORY_SIZE)

    async def startup(self) -> None:
        if self.config.get("load_delay"):
            await asyncio.sleep(float(self.config["load_delay"]))
        if self.mode == "fail_load":
            raise RuntimeError("dummy binding configured to fail at load (mode: fail_load)")

    async def list_available_models(self) -> list[dict[str, Any]]:
        return [
            {"name": n, "format": "dummy", "family": "dummy", "context_size": self.config.get("context_size", 4096), **caps}
            for n, caps in MODELS.items()
        ]

    def _model(self, model_name: str | None) -> str:
        name = model_name or self.default_model or "dummy-echo"
        if name not in MODELS:
            raise NotFoundError(f"model '{echo(name)}' not found in dummy binding (models: {', '.join(MODELS)})")
        return name

    async def check_model(self, model_name: str | None) -> None:
        self._model(model_name)

    def get_supported_input_modalities(self, model_name: str | None = None) -> list[str]:
        name = model_name or self.default_model or "dummy-echo"
        return ["image", "text"] if MODELS.get(name, {}).get("supports_vision") else ["text"]

    async def get_model_info(self, model_name: str | None = None) -> dict[str, Any]:
        name = self._model(model_name)
        return {
            "model_name": name, "model_type": "ttt", "context_size": self.config.get("context_size", 4096),
            "max_output_tokens": 1024, "supports_vision": MODELS[name]["supports_vision"], "supports_audio": False,
            "details": {"format": "dummy", "mode": self.mode},
        }

    def supports_tool_calls(self, model_name: str | None = None) -> bool:
        return self.mode == "tools"

    def _tool_calls(self, task: GenerationTask) -> list[ToolCall]:
        """mode tools: call the first offered tool (every offered tool if the prompt says "all tools") with the
        prompt's JSON object as arguments, unless the conversation already ends with tool results."""
        tools = task.offered_tools()
        if self.mode != "tools" or not tools or (task.messages and task.messages[-1].role == "tool"):
            return []
        try:
            args = json.loads(task.prompt[task.prompt.index("{"):task.prompt.rindex("}") + 1])
        except ValueError:
            args = {}
        chosen = tools if "all tools" in task.prompt and task.parallel_tool_calls else tools[:1]
        return [ToolCall(t.name, args if isinstance(args, dict) else {}) for t in chosen]

    def _text(self, task: GenerationTask) -> str:
        if self.mode == "tools" and task.messages and task.messages[-1].role == "tool":
            results = [m.content for m in task.messages if m.role == "tool"]
            return "tool results: " + " | ".join(results)
        if self.mode == "think":
            return f"<think>The user said: {task.prompt}</think>{task.prompt}"
        return task.prompt

    async def _binary(self, task: GenerationTask) -> dict[str, Any] | None:
        """Image or audio output, encoded off the event loop."""
        if task.generation_type in ("tti", "i2i") or self.mode == "image":
            width, height = _image_size(task.params)
            png = await asyncio.to_thread(make_png, task.prompt, width, height)
            return {"type": "image", "data": png, "mime_type": "image/png",
                    "metadata": {"prompt_used": task.prompt, "width": width, "height": height}}
        if task.generation_type == "tts" or self.mode == "audio":
            wav = await asyncio.to_thread(make_wav, task.prompt)
            return {"type": "audio", "data": wav, "mime_type": "audio/wav", "metadata": {"sample_rate": 16000}}
        return None

    async def generate(self, task: GenerationTask) -> BindingResult:
        model = self._model(task.model_name)
        self.history.append(task)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.mode == "fail_stream":
            raise BackendError("dummy binding configured to fail (mode: fail_stream)")
        binary = await self._binary(task)
        if binary is not None:
            return [binary]
        calls = self._tool_calls(task)
        if calls:
            task.set_usage(len(task.prompt.split()), len(calls))
            return tool_call_output("", calls, {"model": model})
        text = self._text(task)
        limit = task.params.get("max_tokens")
        words = text.split(" ")
        if isinstance(limit, int) and len(words) > limit:
            text = " ".join(words[:limit])
            task.set_finish_reason("length")
        task.set_usage(len(task.prompt.split()), len(text.split()))
        return {"type": "text", "data": text, "metadata": {"model": model}}

    async def generate_stream(self, task: GenerationTask) -> AsyncIterator[StreamEvent]:
        model = self._model(task.model_name)
        self.history.append(task)
        if self.delay:
            await asyncio.sleep(self.delay)
        binary = await self._binary(task)
        if binary is not None:
            yield {"type": "info", "content": f"generating {binary['type']}"}
            yield {"type": "final", "content": [binary]}
            return
        calls = self._tool_calls(task)
        if calls:
            for call in calls:
                yield call_event(call)
            task.set_usage(len(task.prompt.split()), len(calls))
            return
        words = self._text(task).split(" ")
        limit = task.params.get("max_tokens")
        if isinstance(limit, int) and len(words) > limit:
            words = words[:limit]
            task.set_finish_reason("length")
        for i, word in enumerate(words):
            if task.cancel.cancelled:
                return
            if self.mode == "fail_stream" and i == max(1, len(words) // 2):
                raise BackendError("dummy binding failed mid-stream on purpose (mode: fail_stream)")
            yield {"type": "chunk", "content": word if i == 0 else " " + word, "metadata": {"model": model}}
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
        task.set_usage(len(task.prompt.split()), len(words))

    async def tokenize(self, text: str, *, add_bos: bool = False, add_eos: bool = False, model_name: str | None = None) -> list[int]:
        self._model(model_name)
        ids = [b + OFFSET for b in text.encode("utf-8")]
        return ([BOS] if add_bos else []) + ids + ([EOS] if add_eos else [])

    async def detokenize(self, tokens: list[int], *, model_name: str | None = None) -> str:
        self._model(model_name)
        bad = [t for t in tokens if t not in (BOS, EOS) and not OFFSET <= t < OFFSET + 256]
        if bad:
            raise BadRequestError(f"token ids {bad[:5]} are not in the dummy vocabulary (1, 2, 3..258)")
        return bytes(t - OFFSET for t in tokens if t >= OFFSET).decode("utf-8", errors="replace")
