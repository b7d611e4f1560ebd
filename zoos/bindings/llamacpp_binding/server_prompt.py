"""Chat messages -> the /completion request of llama-server, formatted exactly like the in-process engine.

llama-cpp-python's own chat handler does the work: it is called with a stand-in for ``Llama`` that records
what the handler asks for (the prompt text and whether a BOS token goes first, the stop strings, the grammar,
the sampling values with the library's defaults) instead of running the model. The same template, the same
tool and ``response_format`` handling, the same defaults: so at temperature 0 one request gives the same
tokens on both engines. The handler is pure Python (Jinja2 and the JSON-schema-to-grammar converter); no
llama.cpp call is made in this process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# llama-cpp-python's sampler order (penalties, top-k, typical, top-p, min-p, temperature): the server's
# default order differs, which changes results when temperature > 0
SAMPLERS = ["penalties", "top_k", "typ_p", "top_p", "min_p", "temperature"]


@dataclass(frozen=True)
class ModelVocab:
    """What formatting needs to know about the model (read once from the running server and the file)."""

    metadata: dict[str, Any]  # GGUF string metadata (the chat templates)
    bos_text: str
    eos_text: str
    eos_id: int
    bos_id: int
    specials_at_start: bool  # tokenizing with add_special puts a BOS (or other token) first


@dataclass
class _Prompt:
    text: str
    add_bos: bool


@dataclass
class Captured:
    prompt: _Prompt | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


class CapturingLlama:
    """Stands for ``Llama`` inside a chat handler: records the completion it would run."""

    verbose = False

    def __init__(self, chat_format: str, metadata: dict[str, Any]) -> None:
        self.chat_format = chat_format
        self.metadata = metadata
        self.captured = Captured()

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> _Prompt:
        return _Prompt(text.decode("utf-8"), add_bos)

    def create_completion(self, prompt: Any, **kwargs: Any) -> dict[str, Any]:
        self.captured = Captured(prompt if isinstance(prompt, _Prompt) else _Prompt(str(prompt), True), kwargs)
        return {"id": "capture", "object": "text_completion", "created": 0, "model": "capture",
                "choices": [{"text": "", "index": 0, "logprobs": None, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}


# what the binding reads of the final event (the rest - settings, the prompt's text - is not sent)
FINAL_FIELDS = ["content", "stop", "stop_type", "tokens_predicted", "tokens_evaluated", "timings/prompt_n"]


class PromptFormatter:
    """The chat handler the in-process engine would pick for this model and ``chat_format`` setting."""

    def __init__(self, vocab: ModelVocab, chat_format: str | None) -> None:
        from llama_cpp import llama_chat_format as lcf

        self.vocab = vocab
        templates = {name[10:]: t for name, t in vocab.metadata.items()
                     if name.startswith("tokenizer.chat_template.") and isinstance(t, str)}
        default = vocab.metadata.get("tokenizer.chat_template")
        if isinstance(default, str):
            templates["chat_template.default"] = default
        handlers = {name: lcf.Jinja2ChatFormatter(template=t, eos_token=vocab.eos_text, bos_token=vocab.bos_text,
                                                  stop_token_ids=[vocab.eos_id]).to_chat_handler()
                    for name, t in templates.items()}
        if chat_format is None and "chat_template.default" in templates:
            chat_format = lcf.guess_chat_format_from_gguf_metadata(vocab.metadata) or "chat_template.default"
        self.chat_format: str = chat_format or "llama-2"
        self.handler: Any = handlers.get(self.chat_format) or lcf.get_chat_completion_handler(self.chat_format)

    def capture(self, messages: list[dict[str, Any]], sampling: dict[str, Any]) -> Captured:
        llm = CapturingLlama(self.chat_format, self.vocab.metadata)
        self.handler(llama=llm, messages=messages, stream=True, **sampling)
        if llm.captured.prompt is None:
            raise RuntimeError(f"chat format '{self.chat_format}' produced no completion")
        return llm.captured

    def completion_body(self, captured: Captured, prompt: Any) -> dict[str, Any]:
        """The /completion JSON for a captured request; ``prompt`` is the text or its token ids."""
        kw = captured.kwargs
        body: dict[str, Any] = {
            "prompt": prompt, "stream": True, "cache_prompt": True, "samplers": SAMPLERS,
            "temperature": kw.get("temperature", 0.8), "top_p": kw.get("top_p", 0.95), "top_k": kw.get("top_k", 40),
            "min_p": kw.get("min_p", 0.05), "typical_p": kw.get("typical_p", 1.0),
            "repeat_penalty": kw.get("repeat_penalty", 1.0), "presence_penalty": kw.get("presence_penalty", 0.0),
            "frequency_penalty": kw.get("frequency_penalty", 0.0),
            "mirostat": kw.get("mirostat_mode", 0), "mirostat_tau": kw.get("mirostat_tau", 5.0),
            "mirostat_eta": kw.get("mirostat_eta", 0.1),
            "n_predict": kw["max_tokens"] if kw.get("max_tokens") else -1,
            "stop": [s for s in (kw.get("stop") or []) if s],
            "return_tokens": False,
            "response_fields": FINAL_FIELDS,
        }
        seed = kw.get("seed")
        if seed is not None:
            body["seed"] = seed
        grammar = kw.get("grammar")
        if grammar is not None:
            body["grammar"] = grammar._grammar
        return body
