"""Main configuration and instance files: formats, strict validation, migration, encryption."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet
from helpers import api_client, run_cli, write_config, write_instance

from lollms_server.core.config import load_server_config
from lollms_server.core.guarded_config import ConfigFileError

SECRET = "sk-live-very-secret-777"


@pytest.mark.parametrize("ext", ["yaml", "json", "toml", "db"])
async def test_every_format_serves(tmp_path: Path, ext: str) -> None:
    d = tmp_path / "cfg"
    write_config(d, ext=ext)
    assert (d / f"main_config.{ext}").is_file()
    async with api_client(d) as c:
        r = await c.post("/api/v1/generate", json={"input_data": [{"type": "text", "role": "user_prompt", "data": f"via {ext}"}]})
        assert r.json()["output"][0]["data"] == f"via {ext}"


def _yaml_config(tmp_path: Path) -> Path:
    d = tmp_path / "cfg"
    write_config(d)
    return d / "main_config.yaml"


@pytest.mark.parametrize(
    ("mutate", "key", "problem"),
    [
        (lambda v: v["server"].__setitem__("port", "abc"), "server.port", "must be of type int"),
        (lambda v: v["server"].__setitem__("port", 70000), "server.port", "<= 65535"),
        (lambda v: v["server"].__setitem__("colour", "blue"), "server.colour", "unknown setting"),
        (lambda v: v["resource_manager"].__setitem__("gpu_strategy", "yolo"), "resource_manager.gpu_strategy", "must be one of"),
        (lambda v: v["webui"].__setitem__("enable_ui", "yes"), "webui.enable_ui", "must be of type bool"),
        (lambda v: v["defaults"].__setitem__("ttt_binding", "ghost"), "defaults.ttt_binding", "not a key of bindings_map"),
        (lambda v: v["server"].__setitem__("allowed_origins", ["null"]), "server.allowed_origins", "'null' origin"),
        (lambda v: v.__setitem__("__version__", "9.0.0"), "__version__", "newer"),
    ],
)
def test_invalid_config_is_refused_and_left_untouched(tmp_path: Path, mutate, key: str, problem: str) -> None:  # type: ignore[no-untyped-def]
    path = _yaml_config(tmp_path)
    values = yaml.safe_load(path.read_text())
    mutate(values)
    path.write_text(yaml.safe_dump(values))
    before = path.read_bytes()
    with pytest.raises(ConfigFileError) as err:
        load_server_config(path.parent)
    assert str(path) in str(err.value) and key in str(err.value) and problem in str(err.value)
    assert path.read_bytes() == before


def test_malformed_file_names_the_file_and_cli_exits_nonzero(tmp_path: Path) -> None:
    path = _yaml_config(tmp_path)
    path.write_text("server: [unclosed\n")
    before = path.read_bytes()
    res = run_cli("serve", "--config-dir", str(path.parent), "--port", "1")
    assert res.returncode == 2
    assert "configuration error" in res.stderr and "main_config.yaml" in res.stderr and "cannot be" in res.stderr and "line 2" in res.stderr
    assert path.read_bytes() == before


def test_no_config_says_how_to_create_one(tmp_path: Path) -> None:
    res = run_cli("serve", "--config-dir", str(tmp_path / "empty"))
    assert res.returncode == 2 and "lollms-server init" in res.stderr


def test_older_version_is_migrated_in_memory(tmp_path: Path) -> None:
    path = _yaml_config(tmp_path)
    values = yaml.safe_load(path.read_text())
    values["__version__"] = "0.1.0"
    values["server"]["removed_setting"] = 1  # removed keys of older files are dropped
    del values["server"]["keepalive_interval"]  # new keys get their defaults
    path.write_text(yaml.safe_dump(values))
    cfg = load_server_config(path.parent)
    assert cfg.migrated_from == "0.1.0"
    assert cfg.section("server")["keepalive_interval"] == 15.0 and "removed_setting" not in cfg.section("server")


def test_init_writes_a_config_and_never_overwrites(tmp_path: Path) -> None:
    d = tmp_path / "fresh"
    res = run_cli("init", "--config-dir", str(d), "--preset", "dummy", "--format", "toml")
    assert res.returncode == 0, res.stderr
    main = d / "main_config.toml"
    cfg = load_server_config(d)
    keys = cfg.api_keys
    assert len(keys) == 1 and len(keys[0]) > 30 and keys[0] not in res.stdout + res.stderr
    assert cfg.section("server")["host"] == "127.0.0.1" and cfg.section("server")["port"] == 9601
    before = main.read_bytes()
    res = run_cli("init", "--config-dir", str(d), "--preset", "dummy")
    assert res.returncode == 0 and "unchanged" in res.stdout and main.read_bytes() == before


async def test_encrypted_instance_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = Fernet.generate_key()
    d = tmp_path / "cfg"
    write_config(d, {"dummy": ("dummy_binding", {"api_key": SECRET})}, key=key)
    inst = d / "bindings" / "dummy.yaml"
    raw = inst.read_bytes()
    assert SECRET.encode() not in raw and b"dummy_binding" not in raw
    monkeypatch.setenv("LOLLMS_ENCRYPTION_KEY", key.decode())
    async with api_client(d) as c:
        body = (await c.get("/api/v1/list_bindings")).json()
        assert body["binding_instances"]["dummy"]["api_key"] == "********" and not body["load_errors"]
    monkeypatch.delenv("LOLLMS_ENCRYPTION_KEY")
    async with api_client(d) as c:  # without the key: the instance fails visibly, the server still runs
        body = (await c.get("/api/v1/list_bindings")).json()
        assert "LOLLMS_ENCRYPTION_KEY" in body["load_errors"]["dummy"]
        r = await c.post("/api/v1/generate", json={"input_data": [{"type": "text", "role": "user_prompt", "data": "x"}]})
        assert r.status_code == 503


def test_key_file_beside_instances_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "cfg"
    (d / "bindings").mkdir(parents=True)
    keyfile = d / "bindings" / "secret.key"
    keyfile.write_text(Fernet.generate_key().decode())
    write_config(d, main={"security": {"encryption_key_file": str(keyfile)}})
    with pytest.raises(ConfigFileError) as err:
        load_server_config(d)
    assert "encryption_key_file" in str(err.value) and "beside" in str(err.value)


async def test_key_file_elsewhere_works(tmp_path: Path) -> None:
    key = Fernet.generate_key()
    keyfile = tmp_path / "keys" / "lollms.key"
    keyfile.parent.mkdir()
    keyfile.write_text(key.decode() + "\n")
    d = tmp_path / "cfg"
    write_config(d, key=key, main={"security": {"encryption_key_file": str(keyfile)}})
    async with api_client(d) as c:
        assert not (await c.get("/api/v1/list_bindings")).json()["load_errors"]


async def test_invalid_instance_file_is_visible_not_fatal(tmp_path: Path) -> None:
    d = tmp_path / "cfg"
    write_config(d, {"dummy": ("dummy_binding", {}), "bad": ("dummy_binding", {}), "nofile": ("dummy_binding", {})},
                 write_instances=False)
    write_instance(d, "dummy", "dummy_binding")
    (d / "bindings" / "bad.yaml").write_text("type: dummy_binding\nbinding_instance_name: bad\ndelay: soon\n")
    async with api_client(d) as c:
        errors = (await c.get("/api/v1/list_bindings")).json()["load_errors"]
        assert "delay" in errors["bad"] and "bad.yaml" in errors["bad"]
        assert "not found" in errors["nofile"]
        assert "dummy" not in errors


async def test_plain_instance_beside_encrypted_ones_still_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    key = Fernet.generate_key()
    d = tmp_path / "cfg"
    write_config(d, {"enc": ("dummy_binding", {}), "plain": ("dummy_binding", {})}, write_instances=False)
    write_instance(d, "enc", "dummy_binding", key=key)
    write_instance(d, "plain", "dummy_binding")
    monkeypatch.setenv("LOLLMS_ENCRYPTION_KEY", key.decode())
    async with api_client(d) as c:
        body = (await c.get("/api/v1/list_bindings")).json()
        assert body["load_errors"] == {} and set(body["binding_instances"]) == {"enc", "plain"}
    assert "plain.yaml is not encrypted" in caplog.text
