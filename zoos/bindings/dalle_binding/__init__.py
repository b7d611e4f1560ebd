"""dalle_binding: the OpenAI images API (generations and edits) through the official ``openai`` client."""

from __future__ import annotations

import base64
from typing import Any, ClassVar

from lollms_server.core.bindings.base import (
    IMAGE_MIME_TYPES,
    BindingResult,
    GenerationTask,
)
from lollms_server.core.bindings.remote import OpenAISDKBinding
from lollms_server.core.errors import BadRequestError

EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif", "image/bmp": "bmp"}


def _size(params: dict[str, Any], default: str | None) -> str | None:
    size = params.get("size") or params.get("image_size")
    if not size and params.get("width") and params.get("height"):
        size = f"{int(params['width'])}x{int(params['height'])}"
    size = size or default
    if size and size != "auto":
        w, _, h = str(size).lower().partition("x")
        if not (w.isdigit() and h.isdigit()):
            raise BadRequestError(f"size '{size}' must look like 1024x1024 (or auto)")
    return str(size) if size else None


class DalleBinding(OpenAISDKBinding):
    binding_type_name: ClassVar[str] = "dalle_binding"
    accepted_mime_types: ClassVar[dict[str, tuple[str, ...]]] = {"image": IMAGE_MIME_TYPES}
    input_roles: ClassVar[frozenset[str]] = frozenset({"user_prompt", "system_context", "input_image", "mask"})
    provider: ClassVar[str] = "OpenAI images API"
    default_timeout: ClassVar[float] = 180.0
    package_extra: ClassVar[str] = "dalle"

    async def list_available_models(self) -> list[dict[str, Any]]:
        models = [str(m) for m in self.config.get("models") or []]
        return [{"name": m, "format": "remote", "family": "openai-images", "supports_vision": False} for m in models]

    async def get_model_info(self, model_name: str | None = None) -> dict[str, Any]:
        name = model_name or self.default_model
        return {"model_name": name, "model_type": "tti", "context_size": None, "max_output_tokens": None,
                "supports_vision": False, "supports_audio": False,
                "details": {"sizes": self.config.get("default_size"), "edits": True}}

    def _common(self, task: GenerationTask) -> dict[str, Any]:
        p = task.params
        args: dict[str, Any] = {"model": task.model_name or self.default_model, "prompt": task.prompt}
        if not (task.prompt or "").strip():
            raise BadRequestError("an image needs a text prompt (input_data item with role user_prompt)")
        n = int(p.get("n") or p.get("num_images") or 1)
        if not 1 <= n <= 10:
            raise BadRequestError("n must be between 1 and 10")
        args["n"] = n
        size = _size(p, self.config.get("default_size"))
        if size:
            args["size"] = size
        for name in ("quality", "style"):
            value = p.get(name) or self.config.get(f"default_{name}")
            if value:
                args[name] = str(value)
        if self.config.get("send_response_format", True):
            args["response_format"] = "b64_json"
        return args

    async def generate(self, task: GenerationTask) -> BindingResult:
        args = self._common(task)
        images = [i for i in task.inputs if i.type == "image" and i.role != "mask"]
        masks = [i for i in task.inputs if i.type == "image" and i.role == "mask"]
        try:
            async with self._client_for(task) as client:
                if images or task.generation_type == "i2i":
                    if not images:
                        raise BadRequestError("i2i needs an input image (type image, role input_image)")
                    args.pop("style", None)  # edits take no style
                    files = [(f"image{k}.{EXTENSIONS.get(i.mime_type or '', 'png')}", base64.b64decode(i.data), i.mime_type or "image/png")
                             for k, i in enumerate(images)]
                    if masks:
                        m = masks[0]
                        args["mask"] = ("mask.png", base64.b64decode(m.data), m.mime_type or "image/png")
                    resp = await client.images.edit(image=files if len(files) > 1 else files[0], **args)
                else:
                    resp = await client.images.generate(**args)
        except Exception as exc:
            raise self._failure(exc) from None
        outputs: list[dict[str, Any]] = []
        data = getattr(resp, "data", None)  # a 200 with HTML or text comes back as a str
        for item in data if isinstance(data, list) else []:
            if not item.b64_json:
                raise self._upstream_error("the answer holds an image URL, not base64 data (keep send_response_format on)")
            outputs.append({"type": "image", "data": item.b64_json, "mime_type": "image/png",
                            "metadata": {"model": args["model"], "revised_prompt": item.revised_prompt,
                                         "size": args.get("size"), "prompt_used": task.prompt}})
        if not outputs:
            raise self._upstream_error("the answer holds no image")
        return outputs
