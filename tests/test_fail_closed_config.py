"""A damaged main config never starts the server with authentication off; reading a config never writes it."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Callable

import httpx
import pytest
import yaml
from helpers import API_KEY, ServerProcess, run_cli, write_config


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file of ``folder`` (recursively) with its bytes, mtime and mode: proves nothing was written."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_mode)
        for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.startswith("server-")
    }


def _yaml_text(tmp_path: Path) -> tuple[Path, str]:
    d = tmp_path / "cfg"
    write_config(d)
    path = d / "main_config.yaml"
    return path, path.read_text()


def _cut_before_security(text: str) -> str:
    return text[: text.index("security:")]


def _security_null(text: str) -> str:
    values = yaml.safe_load(text)
    values["security"] = None
    return yaml.safe_dump(values)


def _only_version(text: str) -> str:
    return f"__version__: {yaml.safe_load(text)['__version__']}\n"


def _keys_not_a_list(text: str) -> str:
    values = yaml.safe_load(text)
    values["security"]["allowed_api_keys"] = API_KEY
    return yaml.safe_dump(values)


def _empty_key(text: str) -> str:
    values = yaml.safe_load(text)
    values["security"]["allowed_api_keys"] = [""]
    return yaml.safe_dump(values)


def _keys_missing(text: str) -> str:
    values = yaml.safe_load(text)
    del values["security"]["allowed_api_keys"]
    return yaml.safe_dump(values)


def _section_missing(text: str) -> str:
    values = yaml.safe_load(text)
    del values["resource_manager"]
    return yaml.safe_dump(values)


def _a_list(text: str) -> str:
    return "- server\n- security\n"


@pytest.mark.parametrize(("damage", "key", "problem"), [
    (lambda text: "", None, "empty"),
    (lambda text: "\n# nothing left\n", None, "holds no settings"),
    (_cut_before_security, "security", "section missing"),
    (_security_null, "security", "got null"),
    (_only_version, None, "holds no settings"),
    (_keys_not_a_list, "security.allowed_api_keys", "must be of type list"),
    (_empty_key, "security.allowed_api_keys[0]", "an empty key is not allowed"),
    (_keys_missing, "security.allowed_api_keys", "setting missing"),
    (_section_missing, "resource_manager", "section missing"),
    (_a_list, None, "mapping"),
], ids=["zero-bytes", "blank", "truncated", "security-null", "only-version", "wrong-type", "empty-key",
        "keys-missing", "section-missing", "not-a-mapping"])
def test_damaged_yaml_is_refused_with_exit_2(tmp_path: Path, damage: Callable[[str], str], key: str | None,
                                               problem: str) -> None:
    path, text = _yaml_text(tmp_path)
    path.write_text(damage(text))
    before = _snapshot(path.parent)
    res = run_cli("serve", "--config-dir", str(path.parent), "--port", "1")
    assert res.returncode == 2, res.stdout + res.stderr
    assert "configuration error" in res.stderr and str(path) in res.stderr and problem in res.stderr, res.stderr
    if key is not None:
        assert f"key '{key}'" in res.stderr, res.stderr
    assert "serving on" not in res.stdout
    assert _snapshot(path.parent) == before, "a refused config must be left exactly as it was"


def test_zero_byte_sqlite_config_is_refused_and_not_written(tmp_path: Path) -> None:
    d = tmp_path / "cfg"
    write_config(d, ext="db")
    db = d / "main_config.db"
    db.write_bytes(b"")
    before = _snapshot(d)
    res = run_cli("serve", "--config-dir", str(d), "--port", "1")
    assert res.returncode == 2 and str(db) in res.stderr and "empty" in res.stderr, res.stderr
    assert _snapshot(d) == before and sorted(p.name for p in d.iterdir()) == sorted(["bindings", "main_config.db"])


def test_sqlite_config_without_security_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "cfg"
    write_config(d, ext="db")
    db = d / "main_config.db"
    with sqlite3.connect(db) as conn:  # what a cut or damaged database looks like: the security rows are gone
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
        deleted = 0
        for table in tables:
            cols = [r[1] for r in conn.execute(f"pragma table_info({table})")]
            key_col = next((c for c in cols if c in ("key", "name", "path")), cols[0])
            deleted += conn.execute(f"delete from {table} where {key_col} like 'security%'").rowcount
    conn.close()
    assert deleted > 0, f"found no security rows to delete in {tables}"
    before = _snapshot(d)
    res = run_cli("serve", "--config-dir", str(d), "--port", "1")
    assert res.returncode == 2 and "security" in res.stderr and str(db) in res.stderr, res.stderr
    assert _snapshot(d) == before


@pytest.mark.parametrize("ext", ["yaml", "db"])
def test_reading_a_config_never_writes_it(tmp_path: Path, ext: str) -> None:
    d = tmp_path / "cfg"
    write_config(d, ext=ext)
    before = _snapshot(d)
    names_before = sorted(p.name for p in d.iterdir())
    with ServerProcess(d) as srv:
        r = httpx.get(f"{srv.base_url}/api/v1/list_bindings", headers={"X-API-Key": API_KEY}, timeout=30)
        assert r.status_code == 200
    after = _snapshot(d)
    assert {name: after.get(name) for name in before} == before, "starting and serving must not touch any config file"
    created = sorted(p.name for p in d.iterdir() if p.name not in names_before and not p.name.startswith("server-"))
    assert all(name.startswith("usage.sqlite") for name in created), created  # only the usage ledger (data)


def test_auth_off_only_when_said_and_then_loudly(tmp_path: Path) -> None:
    d = tmp_path / "cfg"
    write_config(d, api_keys=[], main={"server": {"allowed_origins": ["*"]}})
    with ServerProcess(d) as srv:
        health = httpx.get(f"{srv.base_url}/health", timeout=10).json()
        assert health["status"] == "ok" and health["api_key_required"] is False and health["auth"] == "disabled"
        assert any("authentication is OFF" in w for w in health["warnings"])
        assert any("allowed_origins" in w and "'*'" in w for w in health["warnings"])
        assert httpx.get(f"{srv.base_url}/api/v1/list_bindings", timeout=10).status_code == 200
    log = srv.log()
    assert "WARNING: authentication is OFF" in log and "WARNING: CORS allows every origin" in log


def test_auth_on_reports_no_warning(tmp_path: Path) -> None:
    d = tmp_path / "cfg"
    write_config(d)
    with ServerProcess(d) as srv:
        health = httpx.get(f"{srv.base_url}/health", timeout=10).json()
        assert health["auth"] == "required" and health["api_key_required"] is True and health["warnings"] == []
        assert httpx.get(f"{srv.base_url}/api/v1/list_bindings", timeout=10).status_code == 403
    assert "WARNING" not in srv.log()


def test_older_file_without_security_is_refused(tmp_path: Path) -> None:
    path, text = _yaml_text(tmp_path)
    values = yaml.safe_load(text)
    values["__version__"] = "0.1.0"
    del values["security"]
    path.write_text(yaml.safe_dump(values))
    res = run_cli("serve", "--config-dir", str(path.parent), "--port", "1")
    assert res.returncode == 2 and "key 'security'" in res.stderr, res.stderr


def test_files_written_by_the_server_tools_are_private(tmp_path: Path) -> None:
    d = tmp_path / "cfg"
    res = run_cli("init", "--config-dir", str(d), "--preset", "dummy")
    assert res.returncode == 0, res.stderr
    written = [p for p in d.rglob("*") if p.is_file()]
    assert written
    for p in written:
        assert p.stat().st_mode & 0o777 == 0o600, f"{p.name} is {oct(p.stat().st_mode & 0o777)}"
    assert not [p for p in d.rglob(".*") if ".saving-" in p.name or p.suffix == ".tmp"]
