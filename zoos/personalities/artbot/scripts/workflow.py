"""Artbot: the text binding writes an image prompt, the default image binding paints it.

The answer is the spec's example response: one text output, then one image output whose metadata holds
``prompt_used``. Streaming sends progress as ``info`` events and the prompt as a ``chunk``.
"""

from __future__ import annotations

from typing import Any, AsyncIterator

from lollms_server.core.bindings.base import GenerationTask
from lollms_server.core.outputs import standardize_result

IMAGE_KEYS = ("width", "height", "image_size", "size", "num_inference_steps", "steps", "guidance_scale", "seed",
              "negative_prompt", "scheduler")


def _default_image_binding(config: Any) -> str | None:
    """defaults.tti_binding of the main config (works with the server's config object and a plain mapping)."""
    if hasattr(config, "default_binding"):
        return config.default_binding("tti")  # type: ignore[no-any-return]
    defaults = config.get("defaults", {}) if isinstance(config, dict) else getattr(config, "defaults", {})
    return (defaults or {}).get("tti_binding")


def _clean(text: str) -> str:
    line = next((ln.strip() for ln in text.strip().splitlines() if ln.strip()), "")
    return line.strip(" \"'`*").removeprefix("Image:").strip()


async def run_workflow(prompt: str, params: dict[str, Any], context: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    text_binding = context.get("binding")
    personality = context.get("personality")
    image_name = _default_image_binding(context["config"])

    async def stream() -> AsyncIterator[dict[str, Any]]:
        if text_binding is None:
            yield {"type": "error", "content": "artbot needs a text binding: set defaults.ttt_binding or send binding_name"}
            return
        if not image_name:
            yield {"type": "error", "content": "artbot needs an image binding: set defaults.tti_binding in the main config"}
            return
        image_binding = context["binding_manager"].get_binding(image_name)
        yield {"type": "info", "content": "writing the image prompt"}
        written = await text_binding.complete(
            f"Describe, in one sentence, a picture of: {prompt}",
            system_prompt=personality.conditioning if personality else None,
            params={k: params[k] for k in ("temperature", "top_p", "top_k", "seed") if k in params}
            | {"max_tokens": min(int(params.get("max_tokens") or 80), 120)},
        )
        image_prompt = _clean(written) or prompt
        yield {"type": "chunk", "content": image_prompt}
        yield {"type": "info", "content": f"painting with '{image_name}'"}
        extra = (personality.config.model_extra or {}).get("image_parameters", {}) if personality else {}
        image_params = {**extra, **{k: params[k] for k in IMAGE_KEYS if k in params}}
        request_id = context.get("request_info", {}).get("request_id", "artbot")
        task = GenerationTask(request_id=f"{request_id}-image", generation_type="tti", model_name=image_binding.default_model,
                              prompt=image_prompt, params=image_params)
        parent = context.get("task")
        if parent is not None:
            task.cancel = parent.cancel  # the client leaving stops the painting too
        resources = context["resource_manager"]
        if image_binding.needs_resource(task) and not (text_binding.needs_resource(task)):
            async with resources.acquire_gpu_resource(f"{image_name}:{task.request_id}"):
                images = standardize_result(await image_binding.generate(task))
        else:
            images = standardize_result(await image_binding.generate(task))
        outputs = [{"type": "text", "data": image_prompt, "metadata": {"binding": context.get("binding_name")}}]
        for image in images:
            meta = {**(image.metadata or {}), "prompt_used": image_prompt, "binding": image_name}
            outputs.append({**image.model_dump(), "metadata": meta})
        yield {"type": "final", "content": outputs}

    return stream()
