"""A scripted personality that uses every key of the workflow context, as a template for new ones.

``run_workflow(prompt, params, context)`` may return a string, an OutputData-like dict, a list of them, or an
async generator of StreamChunk-like dicts (``info``, ``chunk``, ``function_call``, ``final``…), as here.
"""

from __future__ import annotations

from typing import Any, AsyncIterator

CONTEXT_KEYS = ("binding", "config", "function_manager", "binding_manager", "resource_manager", "input_data",
                "request_info", "personality")


def _describe(context: dict[str, Any]) -> dict[str, Any]:
    binding = context.get("binding")
    config = context.get("config")
    functions = context.get("function_manager")
    bindings = context.get("binding_manager")
    resources = context.get("resource_manager")
    personality = context.get("personality")
    defaults = getattr(config, "defaults", None) or (config.get("defaults") if isinstance(config, dict) else {}) or {}
    return {
        # the binding instance chosen for this request (request binding_name, personality or default)
        "binding": None if binding is None else {"instance": binding.instance_name, "type": binding.binding_type_name,
                                                 "default_model": binding.default_model},
        # the main configuration: here its defaults section
        "config": {k: v for k, v in dict(defaults).items() if k.endswith("_binding") and v},
        # functions a workflow may call: execute_function("module.function", {...}) -> (ok, result)
        "function_manager": sorted(functions.list_names()) if functions is not None else [],
        # every configured instance, usable by name: binding_manager.get("name")
        "binding_manager": sorted(bindings.instances) if bindings is not None else [],
        # GPU slots: async with resource_manager.acquire_gpu_resource("label"): ...
        "resource_manager": {"strategy": getattr(resources, "strategy", None), "limit": getattr(resources, "limit", None)},
        # the request's inputs (InputData: type, role, data, mime_type, metadata)
        "input_data": [{"type": i.type, "role": i.role, "chars": len(i.data)} for i in context.get("input_data") or []],
        # request id, generation type, model and personality names
        "request_info": dict(context.get("request_info") or {}),
        # this personality: config (config.yaml), conditioning (system prompt), path
        "personality": None if personality is None else {"name": personality.name,
                                                         "conditioning": personality.conditioning},
    }


async def run_workflow(prompt: str, params: dict[str, Any], context: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    async def stream() -> AsyncIterator[dict[str, Any]]:
        found = _describe(context)
        for key in CONTEXT_KEYS:
            yield {"type": "info", "content": {"context_key": key, "value": found[key]}}
        functions = context["function_manager"]
        ok, words = await functions.execute_function("text_tools.word_count", {"text": prompt})
        yield {"type": "function_call", "content": {"name": "text_tools.word_count", "arguments": {"text": prompt},
                                                    "ok": ok, "result": words}}
        reply = ""
        binding = context.get("binding")
        if binding is not None:
            personality = context.get("personality")
            reply = await binding.complete(prompt, system_prompt=personality.conditioning if personality else None,
                                           params={"max_tokens": int(params.get("max_tokens") or 48)})
            yield {"type": "chunk", "content": reply}
        yield {"type": "final", "content": [
            {"type": "text", "data": reply, "metadata": {"word_count": words if ok else None}},
            {"type": "json", "data": found},
        ]}

    return stream()
