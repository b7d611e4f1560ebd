"""Defaults that work on the first try: the older `prompt` field, instances without a usable model reported as
`no_model` (API, /v1/models, wizard Test), presets that only map what can serve, and model aliases in config."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from helpers import api_client, registry, write_config

from lollms_server.core.config import load_server_config
from lollms_server.core.guarded_config import ConfigFileError
from lollms_server.core.presets import write_preset
from lollms_server.wizard.instances import probe_instance

needs_diffusers = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("torch", "diffusers", "transformers")),
    reason="needs the diffusers extra",
)


async def test_older_prompt_field_is_text_prompt(config_dir: Path) -> None:
    async with api_client(config_dir) as c:
        r = await c.post("/api/v1/generate", json={"prompt": "hello from an old client", "binding_name": "dummy"})
        assert r.status_code == 200, r.text
        assert r.json()["output"][0]["data"] == "hello from an old client"
        same = await c.post("/api/v1/generate", json={"prompt": "a b", "text_prompt": "a b"})
        assert same.status_code == 200
        clash = await c.post("/api/v1/generate", json={"prompt": "a", "text_prompt": "b"})
        assert clash.status_code == 422 and "prompt" in clash.json()["detail"]


@needs_diffusers
async def test_instance_without_model_reports_no_model_with_the_fix(tmp_path: Path) -> None:
    d = tmp_path / "cfg"
    models = tmp_path / "models"
    (models / "diffusers_models").mkdir(parents=True)
    write_config(d, {"dummy": ("dummy_binding", {}), "pics": ("diffusers_binding", {"models_folder": str(models)})})
    async with api_client(d) as c:
        listing = (await c.get("/api/v1/list_bindings")).json()
        state = listing["instance_states"]["pics"]
        assert state["state"] == "no_model" and "save_pretrained" in state["detail"] and "diffusers_models" in state["detail"]
        assert listing["instance_states"]["dummy"] == {"state": "active", "detail": None}
        cards = {m["id"]: m["lollms"] for m in (await c.get("/v1/models")).json()["data"]}
        assert cards["pics"]["state"] == "no_model" and "save_pretrained" in cards["pics"]["state_detail"]
        assert cards["dummy"]["state"] == "active"
        r = await c.post("/api/v1/generate", json={"text_prompt": "a fox", "binding_name": "pics", "generation_type": "tti"})
        assert r.status_code == 503 and "Diffusers" in r.json()["detail"]
    btype = registry().types["diffusers_binding"]
    ok, _, models_listed, no_model = await probe_instance(btype, {"type": "diffusers_binding", "binding_instance_name": "pics",
                                                                  "models_folder": str(models)})
    assert ok and models_listed == [] and no_model and "save_pretrained" in no_model


@needs_diffusers
def test_default_preset_maps_images_only_when_a_model_exists(tmp_path: Path) -> None:
    write_preset(tmp_path / "cfg", "offline_local", api_keys=["k"])
    cfg = load_server_config(tmp_path / "cfg")
    assert cfg.default_binding("tti") is None and "default_diffusers" in cfg.bindings_map
    assert cfg.default_binding("ttt") == "default_llamacpp"
    for modality, instance in (("tts", "default_piper"), ("stt", "default_whisper")):
        assert cfg.default_binding(modality) == (instance if cfg.bindings_map.get(instance) else None)


def test_model_aliases_and_keyless_surfaces_are_validated(tmp_path: Path) -> None:
    d = tmp_path / "cfg"
    write_config(d, main={"model_aliases": {"gpt-4o": "", "mine": "dummy"}})
    aliases = load_server_config(d).model_aliases
    assert "gpt-4o" not in aliases and aliases["mine"] == "dummy" and aliases["tts-1"] == "tts"
    bad = tmp_path / "bad"
    with pytest.raises(ConfigFileError) as err:
        write_config(bad, main={"security": {"keyless_loopback_surfaces": ["everything"]}})
        load_server_config(bad)
    assert "keyless_loopback_surfaces" in str(err.value)
