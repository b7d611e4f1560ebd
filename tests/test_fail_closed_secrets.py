"""No secret in clear beside encrypted data, and none in responses (partial quotes and generated text too)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from helpers import API_KEY, api_client, run_cli, sse_events, write_config, write_instance
from remote_common import fake_fixture

from fakes.openai_fake import FakeOpenAI
from lollms_server.core.config_schema import MAIN_SCHEMA
from lollms_server.core.guarded_config import load_guarded, looks_encrypted, save_guarded_atomic

INSTANCE_SECRET = "sk-qzvOPE7Hq2mB9LwX4tNcRv5Kd8Yp1Zaxc"
fake_openai = fake_fixture(FakeOpenAI, "fake_openai")


def _plain_config_with_secret(tmp_path: Path) -> Path:
    d = tmp_path / "cfg"
    write_config(d, {"oa": ("openai_binding", {"base_url": "http://127.0.0.1:9/v1", "api_key": INSTANCE_SECRET,
                                               "api_key_env": None, "default_model": "gpt-fake"})},
                 defaults={"ttt_binding": "oa"})
    return d


def _files_holding(folder: Path, secret: str) -> list[str]:
    return [str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def _assert_private_and_clean(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            assert p.stat().st_mode & 0o777 == 0o600, f"{p.relative_to(folder)} is {oct(p.stat().st_mode & 0o777)}"
    leftovers = [p.name for p in folder.rglob("*") if ".saving-" in p.name or p.name.endswith(".tmp")]
    assert leftovers == [], leftovers


def test_wizard_with_env_key_encrypts_plain_instances_and_their_backups(tmp_path: Path) -> None:
    d = _plain_config_with_secret(tmp_path)
    assert _files_holding(d, INSTANCE_SECRET) == ["bindings/oa.yaml"]
    key = Fernet.generate_key().decode()
    res = run_cli("wizard", "--config-dir", str(d), "--yes", env={"LOLLMS_ENCRYPTION_KEY": key})
    assert res.returncode == 0, res.stderr
    assert "'oa'" in res.stderr and "encrypted" in res.stderr  # says what it does
    assert looks_encrypted(d / "bindings" / "oa.yaml")
    assert (d / "bindings" / "oa.yaml.bak").is_file() and looks_encrypted(d / "bindings" / "oa.yaml.bak")
    assert Fernet(key).decrypt((d / "bindings" / "oa.yaml.bak").read_bytes()).find(INSTANCE_SECRET.encode()) >= 0
    assert _files_holding(d, INSTANCE_SECRET) == []
    _assert_private_and_clean(d)
    # and the server reads them with that key
    res = run_cli("wizard", "--config-dir", str(d), "--yes", env={"LOLLMS_ENCRYPTION_KEY": key})
    assert res.returncode == 0, res.stderr


def test_wizard_says_why_it_cannot_encrypt_with_a_bad_env_key(tmp_path: Path) -> None:
    d = _plain_config_with_secret(tmp_path)
    res = run_cli("wizard", "--config-dir", str(d), "--yes", env={"LOLLMS_ENCRYPTION_KEY": "not-a-fernet-key"})
    assert "LOLLMS_ENCRYPTION_KEY" in res.stderr and "plain text" in res.stderr, res.stderr
    assert "not-a-fernet-key" not in res.stdout + res.stderr
    assert not looks_encrypted(d / "bindings" / "oa.yaml")


def test_new_key_file_leaves_no_clear_backup(tmp_path: Path) -> None:
    d = _plain_config_with_secret(tmp_path)
    key_file = tmp_path / "keys" / "lollms.key"
    res = run_cli("wizard", "--config-dir", str(d), "--yes", "--new-encryption-key-file", str(key_file))
    assert res.returncode == 0, res.stderr
    assert looks_encrypted(d / "bindings" / "oa.yaml") and looks_encrypted(d / "bindings" / "oa.yaml.bak")
    assert _files_holding(d, INSTANCE_SECRET) == []
    _assert_private_and_clean(d)
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_failed_save_leaves_no_temp_file_and_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "cfg"
    main = write_config(d)
    before = main.read_bytes()
    values = load_guarded(main, MAIN_SCHEMA).values
    values["security"]["allowed_api_keys"] = ["a-new-secret-key-000"]

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        save_guarded_atomic(main, MAIN_SCHEMA, values, backup=False)
    monkeypatch.undo()
    assert main.read_bytes() == before
    assert _files_holding(d, "a-new-secret-key-000") == []
    assert [p.name for p in d.iterdir() if p.name.startswith(".")] == []


def test_a_killed_save_is_cleaned_at_the_next_save(tmp_path: Path) -> None:
    d = tmp_path / "cfg"
    main = write_config(d)
    stale = d / ".main_config.yaml.saving-abc123"  # what a save killed between write and rename leaves
    stale.mkdir()
    (stale / "main_config.yaml").write_text("security: {allowed_api_keys: [killed-save-secret-1]}\n")
    values = load_guarded(main, MAIN_SCHEMA).values
    save_guarded_atomic(main, MAIN_SCHEMA, values)
    assert not stale.exists() and _files_holding(d, "killed-save-secret-1") == []
    _assert_private_and_clean(d)


def test_encrypted_instance_save_writes_an_encrypted_backup(tmp_path: Path) -> None:
    d = _plain_config_with_secret(tmp_path)
    key = Fernet.generate_key()
    write_instance(d, "oa", "openai_binding", {"base_url": "http://127.0.0.1:9/v1", "api_key": INSTANCE_SECRET,
                                               "api_key_env": None}, key=key)
    from lollms_server.core.presets import zoo_registry

    schema = zoo_registry().types["openai_binding"].card.full_instance_schema()
    values = load_guarded(d / "bindings" / "oa.yaml", schema, key).values
    save_guarded_atomic(d / "bindings" / "oa.yaml", schema, values, key)
    assert looks_encrypted(d / "bindings" / "oa.yaml.bak") and _files_holding(d, INSTANCE_SECRET) == []


async def test_upstream_partial_key_quote_is_masked(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    wrong_key = "sk-qzvOPE-wrong-key-for-the-fake-77xc"
    d = tmp_path / "cfg"
    write_config(d, {"oa": ("openai_binding", {"base_url": f"{fake_openai.url}/v1", "api_key": wrong_key,
                                               "api_key_env": None, "default_model": "gpt-fake", "max_retries": 0,
                                               "timeout": 5.0})},
                 defaults={"ttt_binding": "oa"})
    fake_openai.behaviour.required_key = "sk-the-right-one-0000"
    fake_openai.behaviour.quote_key_partly = True
    fake_openai.key_error_status = 429  # a status whose upstream text the server passes on
    body = {"input_data": [{"type": "text", "role": "user_prompt", "data": "hi"}]}
    async with api_client(d) as c:
        r = await c.post("/api/v1/generate", json=body)
        s = await c.post("/api/v1/generate", json={**body, "stream": True})
        o = await c.post("/v1/chat/completions", json={"model": "oa/gpt-fake", "messages": [{"role": "user", "content": "hi"}]},
                         headers={"Authorization": f"Bearer {API_KEY}"})
    quoted = wrong_key[:9]
    assert r.status_code == 429 and "Incorrect API key provided" in r.text and quoted not in r.text, r.text
    assert [e["type"] for e in sse_events(s.text)] == ["error", "final"] and quoted not in s.text, s.text
    assert o.status_code >= 400 and quoted not in o.text, o.text


@pytest.mark.parametrize("stream", [False, True])
async def test_secrets_in_generated_text_are_masked(tmp_path: Path, stream: bool) -> None:
    d = _plain_config_with_secret(tmp_path)
    write_instance(d, "echo", "dummy_binding", {})
    import yaml

    main = d / "main_config.yaml"
    values = yaml.safe_load(main.read_text())
    values["bindings_map"]["echo"] = "dummy_binding"
    main.write_text(yaml.safe_dump(values))
    said = f"the server key is {API_KEY} and the upstream one {INSTANCE_SECRET} ok"
    body = {"input_data": [{"type": "text", "role": "user_prompt", "data": said}], "binding_name": "echo", "stream": stream}
    async with api_client(d) as c:
        r = await c.post("/api/v1/generate", json=body)
        o = await c.post("/v1/chat/completions", json={"model": "echo/dummy-echo", "stream": stream,
                                                         "messages": [{"role": "user", "content": said}]},
                         headers={"Authorization": f"Bearer {API_KEY}"})
    for resp in (r, o):
        assert resp.status_code == 200, resp.text
        assert API_KEY not in resp.text and INSTANCE_SECRET not in resp.text, resp.text
        assert "********" in resp.text
        if not stream:
            assert "the server key is ******** and the upstream one ******** ok" in resp.text
    if stream:
        events = sse_events(r.text)
        streamed = "".join(e["content"] for e in events if e["type"] == "chunk")
        assert streamed == events[-1]["content"][0]["data"] and "********" in streamed
