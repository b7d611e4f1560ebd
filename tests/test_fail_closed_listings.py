"""Listings never reveal the host: no symlink leaving the models folder, no absolute server path in any answer."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import yaml
from helpers import API_KEY, ServerProcess, write_config
from test_llamacpp_binding import fake_gguf


def _outside(tmp_path: Path) -> Path:
    out = tmp_path / "outside"
    fake_gguf(out / "host-secret.gguf")
    (out / "voices").mkdir()
    (out / "voices" / "hostvoice.onnx").write_bytes(b"onnx")
    (out / "voices" / "hostvoice.onnx.json").write_text(json.dumps({"audio": {"sample_rate": 22050}}))
    (out / "hostwhisper").mkdir()
    (out / "hostwhisper" / "model.bin").write_bytes(b"bin")
    return out


def _models(cfg: Path, out: Path) -> Path:
    models = cfg / "models"
    fake_gguf(models / "gguf" / "mine.gguf")
    (models / "gguf" / "leak.gguf").symlink_to(out / "host-secret.gguf")
    (models / "gguf" / "leakdir").symlink_to(out)
    (models / "gguf" / "alias.gguf").symlink_to(models / "gguf" / "mine.gguf")  # inside: listed
    (models / "tts").mkdir()
    (models / "tts" / "leakvoice.onnx").symlink_to(out / "voices" / "hostvoice.onnx")
    (models / "tts" / "leakvoice.onnx.json").symlink_to(out / "voices" / "hostvoice.onnx.json")
    (models / "stt").mkdir()
    (models / "stt" / "leakwhisper").symlink_to(out / "hostwhisper")
    (models / "diffusers_models").mkdir()
    (models / "hostlink").symlink_to(out)  # a whole kind folder leaving the models folder
    return models


def _personalities(tmp_path: Path) -> Path:
    pers = tmp_path / "cfg" / "personal_personalities"
    (pers / "helper").mkdir(parents=True)
    (pers / "helper" / "config.yaml").write_text(yaml.safe_dump({"name": "helper", "personality_conditioning": "Help."}))
    (pers / "broken").mkdir()
    (pers / "broken" / "config.yaml").write_text("name: [unclosed\n")
    return pers


def test_no_response_reveals_a_host_path(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    out = _outside(tmp_path)
    models = _models(cfg, out)
    _personalities(tmp_path)
    write_config(cfg, {
        "llm": ("llamacpp_binding", {"models_folder": str(models), "n_ctx": 512}),
        "voice": ("piper_tts_binding", {"models_folder": str(models)}),
        "ears": ("whisper_stt_binding", {"models_folder": str(models)}),
        "dummy": ("dummy_binding", {}),
    }, defaults={"ttt_binding": "dummy"})
    (cfg / "bindings" / "ghost.yaml").write_text("type: dummy_binding\nbinding_instance_name: ghost\nnot_a_setting: 1\n")
    main = cfg / "main_config.yaml"
    values = yaml.safe_load(main.read_text())
    values["bindings_map"]["ghost"] = "dummy_binding"
    main.write_text(yaml.safe_dump(values))

    h = {"X-API-Key": API_KEY}
    bodies: dict[str, str] = {}
    with ServerProcess(cfg) as srv:
        def get(path: str) -> httpx.Response:
            r = httpx.get(srv.base_url + path, headers=h, timeout=60)
            bodies[f"GET {path}"] = r.text
            return r

        def post(path: str, body: dict[str, object]) -> httpx.Response:
            r = httpx.post(srv.base_url + path, headers=h, json=body, timeout=60)
            bodies[f"POST {path} {json.dumps(body)[:80]}"] = r.text
            return r

        for path in ("/health", "/api/v1/list_bindings", "/api/v1/list_active_bindings", "/api/v1/list_personalities",
                     "/api/v1/list_functions", "/api/v1/list_models", "/api/v1/get_default_bindings", "/v1/models",
                     "/openapi.json", "/api/v1/resources", "/api/v1/server_info", "/health/ready"):
            assert get(path).status_code == 200, bodies[f"GET {path}"]
        listed = {name: get(f"/api/v1/list_available_models/{name}") for name in ("llm", "voice", "ears", "dummy")}
        for name, r in listed.items():
            assert r.status_code == 200, (name, r.text)
        gguf_names = {m["name"] for m in listed["llm"].json()["models"]}
        assert {"mine.gguf", "alias.gguf"} <= gguf_names and not any("leak" in n or "host" in n for n in gguf_names)
        assert not any("leak" in m["name"] for m in listed["voice"].json()["models"])
        assert not any("leak" in m["name"] for m in listed["ears"].json()["models"])
        scan = get("/api/v1/list_models").json()["models"]
        assert "leak.gguf" not in scan["gguf"] and "leakdir" not in scan["gguf"] and "hostlink" not in scan
        assert "mine.gguf" in scan["gguf"] and "leakvoice.onnx" not in scan["tts"] and "leakwhisper" not in scan["stt"]
        assert "leak" not in get("/v1/models").text

        personalities = get("/api/v1/list_personalities").json()
        assert "helper" in personalities["personalities"] and "broken" in personalities["load_errors"]
        assert "ghost" in get("/api/v1/list_bindings").json()["load_errors"]

        # error messages of every folder-scanning binding, and of refused names
        for model, binding in (("leak.gguf", "llm"), ("nothere.gguf", "llm"), ("leakdir/host-secret.gguf", "llm"),
                               ("leakvoice", "voice"), ("nothere", "voice"), ("leakwhisper", "ears"), ("nothere", "ears")):
            r = get(f"/api/v1/get_model_info/{binding}?model_name={model}")
            assert r.status_code in (400, 404), (model, r.text)
        post("/api/v1/generate", {"input_data": [{"type": "text", "role": "user_prompt", "data": "x"}],
                                  "binding_name": "llm", "model_name": "leak.gguf"})
        post("/api/v1/generate", {"input_data": [{"type": "text", "role": "user_prompt", "data": "x"}],
                                  "binding_name": "voice", "generation_type": "tts", "model_name": "nothere"})
        post("/api/v1/generate", {"input_data": [{"type": "text", "role": "user_prompt", "data": "x"}],
                                  "personality": "broken"})
        post("/v1/chat/completions", {"model": "llm/leak.gguf", "messages": [{"role": "user", "content": "x"}]})

    host = str(tmp_path)
    leaks = {what: body[max(0, body.find(host) - 60): body.find(host) + 120] for what, body in bodies.items() if host in body}
    assert leaks == {}, leaks
    named = [what for what, body in bodies.items()  # names of files outside, unless the request itself said them
             if any(n in body and n not in what for n in ("host-secret", "hostvoice", "hostwhisper"))]
    assert named == [], {what: bodies[what][:300] for what in named}
    assert len(bodies) > 20
