"""`lollms-server wizard` for scripts: --list-presets, --preset, --set, --yes, --new-encryption-key-file."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from helpers import API_KEY, run_cli, server, write_config

from lollms_server.core.config import load_server_config
from lollms_server.core.config_schema import MAIN_SCHEMA
from lollms_server.core.guarded_config import load_guarded
from lollms_server.core.presets import PRESETS
from lollms_server.wizard.draft import ConfigDraft
from lollms_server.wizard.presets_flow import available_presets


def wizard(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return run_cli("wizard", *args, env=env)


def test_list_presets_shows_only_presets_whose_bindings_exist(tmp_path: Path) -> None:
    result = wizard("--config-dir", str(tmp_path / "c"), "--list-presets")
    assert result.returncode == 0, result.stderr
    listed = {line.split(":")[0].replace(" (default)", "") for line in result.stdout.splitlines() if line}
    draft = ConfigDraft.open(tmp_path / "c")
    expected = {p.name for p in available_presets(draft.registry)}
    assert listed == expected and "dummy" in listed
    for name in PRESETS:
        preset_types = {i.type_name for i in PRESETS[name].instances if not i.optional}
        assert (name in listed) == preset_types.issubset(draft.registry.types)
    assert not (tmp_path / "c").exists(), "listing presets must not create anything"


def test_preset_and_set_create_a_config_that_serves(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    result = wizard("--config-dir", str(cfg), "--preset", "dummy", "--set", "server.port=9777",
                    "--set", "server.allowed_origins=http://a.example, http://b.example",
                    "--set", "webui.enable_ui=false", "--set", "instance.dummy.mode=think",
                    "--set", f"security.allowed_api_keys={API_KEY}", "--format", "json")
    assert result.returncode == 0, result.stderr
    main = cfg / "main_config.json"
    values = load_guarded(main, MAIN_SCHEMA).values
    assert values["server"]["port"] == 9777
    assert values["server"]["allowed_origins"] == ["http://a.example", "http://b.example"]
    assert values["webui"]["enable_ui"] is False
    assert values["bindings_map"] == {"dummy": "dummy_binding", "dummy_image": "dummy_binding", "dummy_speech": "dummy_binding"}
    assert values["defaults"]["ttt_binding"] == "dummy" and values["defaults"]["tti_binding"] == "dummy_image"
    assert (cfg / "bindings" / "dummy.json").is_file()
    load_server_config(cfg)
    with server(cfg) as s:
        r = httpx.post(f"{s.base_url}/api/v1/generate", headers={"X-API-Key": API_KEY},
                       json={"input_data": [{"type": "text", "role": "user_prompt", "data": "hello there"}]}, timeout=30)
        assert r.status_code == 200, r.text
        assert "hello there" in r.text


@pytest.mark.parametrize("setting, message", [
    ("server.prot=1", "unknown key"),
    ("server.port=abc", "expected a whole number"),
    ("server.port=70000", "<= 65535"),
    ("nosuch.key=1", "unknown section"),
    ("resource_manager.gpu_strategy=fast", "must be one of"),
    ("webui.enable_ui=maybe", "expected true or false"),
    ("server.allowed_origins=null", "'null' origin"),
    ("instance.nosuch.mode=echo", "no such instance"),
    ("instance.dummy.colour=red", "unknown field"),
    ("defaults.ttt_binding=ghost", "not a key of bindings_map"),
    ("bindings_map.x=no_such_binding", "not installed"),
    ("server.port", "expected section.key=value"),
])
def test_bad_settings_are_refused_and_change_nothing(tmp_path: Path, setting: str, message: str) -> None:
    cfg = tmp_path / "cfg"
    main = write_config(cfg)
    before = main.read_bytes()
    result = wizard("--config-dir", str(cfg), "--set", setting)
    assert result.returncode == 2
    assert message in result.stderr, result.stderr
    assert "nothing was changed" in result.stderr
    assert main.read_bytes() == before
    assert not main.with_name(main.name + ".bak").exists()


def test_set_on_existing_config_keeps_a_backup_and_other_values(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    main = write_config(cfg, main={"server": {"port": 9123}})
    before = main.read_bytes()
    result = wizard("--config-dir", str(cfg), "--set", "logging.log_level=DEBUG", "--set", "personalities_config.x.enabled=false")
    assert result.returncode == 0, result.stderr
    values = load_guarded(main, MAIN_SCHEMA).values
    assert values["logging"]["log_level"] == "DEBUG" and values["server"]["port"] == 9123
    assert values["personalities_config"] == {"x": {"enabled": False}}
    assert main.with_name(main.name + ".bak").read_bytes() == before


def test_new_encryption_key_file_encrypts_secret_instances(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    write_config(cfg)
    key_file = tmp_path / "keys" / "lollms.key"
    result = wizard("--config-dir", str(cfg), "--set", "instance.dummy.api_key=sk-very-secret-value",
                    "--new-encryption-key-file", str(key_file))
    assert result.returncode == 0, result.stderr
    assert "sk-very-secret-value" not in result.stdout + result.stderr
    raw = (cfg / "bindings" / "dummy.yaml").read_bytes()
    assert b"sk-very-secret-value" not in raw and raw.startswith(b"gAAAAA")
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    config = load_server_config(cfg)
    assert config.encryption_key == key_file.read_text().strip().encode()
    with server(cfg) as s:
        r = httpx.get(f"{s.base_url}/api/v1/list_active_bindings", headers={"X-API-Key": API_KEY}, timeout=30)
        assert r.status_code == 200 and "dummy" in r.text and "sk-very-secret-value" not in r.text


def test_key_file_inside_config_folder_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    write_config(cfg)
    result = wizard("--config-dir", str(cfg), "--new-encryption-key-file", str(cfg / "my.key"))
    assert result.returncode == 2 and "outside the configuration folder" in result.stderr
    assert not (cfg / "my.key").exists()


def test_not_a_terminal_without_flags_explains_itself(tmp_path: Path) -> None:
    result = wizard("--config-dir", str(tmp_path / "c"))
    assert result.returncode == 2 and "--preset" in result.stderr
    help_result = wizard("--help")
    assert help_result.returncode == 0 and "--set" in help_result.stdout
