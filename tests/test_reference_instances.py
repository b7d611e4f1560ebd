"""Instance files written for the reference implementation load: its setting names are aliases in our cards."""

from __future__ import annotations

from pathlib import Path

from fakes.ollama_fake import FakeOllama
from helpers import api_client, write_config
from remote_common import fake_fixture, prompt

fake_ollama = fake_fixture(FakeOllama, "fake_ollama")


def reference_config(tmp_path: Path, files: dict[str, str]) -> Path:
    d = tmp_path / "cfg"
    write_config(d)
    for name, text in files.items():
        (d / "bindings" / f"{name}.yaml").write_text(text)
    main = d / "main_config.yaml"
    mapping = "".join(f"  {n}: {t.split('type: ')[1].splitlines()[0]}\n" for n, t in files.items())
    main.write_text(main.read_text().replace("bindings_map:\n", "bindings_map:\n" + mapping))
    return d


async def test_reference_instance_files_load_and_serve(tmp_path: Path, fake_ollama: FakeOllama) -> None:
    cfg = reference_config(tmp_path, {
        # the shapes of the spec's examples and the reference bindings' own setting names
        "my_ollama_instance": f"type: ollama_binding\nbinding_instance_name: my_ollama_instance\n"
                              f"host: {fake_ollama.url}\ndefault_model: llama-fake\n",
        "my_gemini": "type: gemini_binding\nbinding_instance_name: my_gemini\n"
                     "google_api_key: AIza-reference-secret-123\ndefault_model: gemini-2.5-flash\n",
        "my_dalle": "type: dalle_binding\nbinding_instance_name: my_dalle\nmodel: dall-e-2\napi_key: sk-reference-secret-456\n",
    })
    async with api_client(cfg) as c:
        listing = (await c.get("/api/v1/list_bindings")).json()
        errors = listing["load_errors"]
        assert not {"my_ollama_instance", "my_gemini", "my_dalle"} & set(errors), errors
        inst = listing["binding_instances"]
        assert inst["my_ollama_instance"]["base_url"] == fake_ollama.url
        assert inst["my_gemini"]["api_key"] != "AIza-reference-secret-123" and inst["my_gemini"]["api_key"]
        assert inst["my_dalle"]["default_model"] == "dall-e-2"
        assert "reference-secret" not in str(listing)
        r = await c.post("/api/v1/generate", json=prompt("hello", binding_name="my_ollama_instance"))
        assert r.status_code == 200, r.text
        assert fake_ollama.requests_to("/api/chat"), "the request did not reach the server named by 'host'"


async def test_alias_and_own_name_together_is_an_error(tmp_path: Path) -> None:
    cfg = reference_config(tmp_path, {
        "twice": "type: ollama_binding\nbinding_instance_name: twice\nhost: http://127.0.0.1:9\n"
                 "base_url: http://127.0.0.1:9\n",
    })
    async with api_client(cfg) as c:
        errors = (await c.get("/api/v1/list_bindings")).json()["load_errors"]
    assert "another name of 'base_url'" in errors["twice"] and "host" in errors["twice"]
