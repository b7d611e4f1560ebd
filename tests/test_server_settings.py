"""server.workers (refused above 1, with the reason), logging.log_level in any case, and no pydantic plugin in a server
process unless the operator asks, through the real CLI."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from helpers import API_KEY, ServerProcess, run_cli, write_config

from lollms_server.core.config import load_server_config
from lollms_server.core.guarded_config import ConfigFileError


@pytest.mark.parametrize("level", ["debug", "Warning", "ERROR"])
def test_log_level_accepts_any_case(tmp_path: Path, level: str) -> None:
    write_config(tmp_path, main={"logging": {"log_level": level}})
    assert load_server_config(tmp_path).section("logging")["log_level"] == level


def test_unknown_log_level_names_the_key(tmp_path: Path) -> None:
    write_config(tmp_path, main={"logging": {"log_level": "verbose"}})
    with pytest.raises(ConfigFileError) as err:
        load_server_config(tmp_path)
    assert "logging.log_level" in str(err.value) and "DEBUG" in str(err.value)


@pytest.mark.e2e
def test_lower_case_debug_level_serves_and_logs_debug(tmp_path: Path) -> None:
    write_config(tmp_path, main={"logging": {"log_level": "debug"}})
    with ServerProcess(tmp_path) as srv:
        assert httpx.get(f"{srv.base_url}/health", timeout=10).status_code == 200
        bad = httpx.post(f"{srv.base_url}/api/v1/generate", json={"input_data": "not a list"},
                         headers={"X-API-Key": API_KEY}, timeout=10)
        assert 400 <= bad.status_code < 500
        log = srv.log()
    # the server's own debug record of the rejected body: printed only when DEBUG really applies, not INFO
    assert any(" DEBUG " in line and "invalid request" in line for line in log.splitlines()), log[-2000:]


def test_more_than_one_worker_is_refused_with_the_reason(tmp_path: Path) -> None:
    write_config(tmp_path, main={"server": {"workers": 3}})
    result = run_cli("serve", "--config-dir", str(tmp_path), "--port", "1")
    assert result.returncode == 2
    assert "server.workers" in result.stderr and "Redis" in result.stderr and "is 3" in result.stderr


def test_one_worker_is_the_default_and_accepted(tmp_path: Path) -> None:
    write_config(tmp_path, main={"server": {"workers": 1}})
    assert load_server_config(tmp_path).section("server")["workers"] == 1


def _spy_pydantic_plugin(folder: Path, marker: Path) -> dict[str, str]:
    """An installed package that declares a pydantic plugin (entry point group "pydantic"); importing it
    leaves ``marker``. Returns the environment that puts it on the server's path."""
    (folder / "spy_plugin.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('loaded')\n"
        "class Spy:\n    def new_schema_validator(self, *args, **kwargs):\n        return None, None, None\n"
        "plugin = Spy()\n")
    dist = folder / "spy_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: spy-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[pydantic]\nspy = spy_plugin:plugin\n")
    return {"PYTHONPATH": os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(folder)) if p)}


@pytest.mark.e2e
@pytest.mark.parametrize("operator_setting", [None, ""], ids=["default", "plugins-asked-for"])
def test_serve_loads_no_pydantic_plugin_unless_the_operator_asks(tmp_path: Path, operator_setting: str | None) -> None:
    """A pydantic plugin would watch every validated request body: a server process loads none by default."""
    d = tmp_path / "cfg"
    write_config(d)
    (tmp_path / "site").mkdir()
    marker = tmp_path / "plugin-was-loaded"
    env = _spy_pydantic_plugin(tmp_path / "site", marker)
    if operator_setting is not None:
        env["PYDANTIC_DISABLE_PLUGINS"] = operator_setting
    with ServerProcess(d, env=env) as srv:
        r = httpx.post(f"{srv.base_url}/api/v1/generate", headers={"X-API-Key": API_KEY}, timeout=30,
                       json={"input_data": [{"type": "text", "role": "user_prompt", "data": "hi"}]})
        assert r.status_code == 200, r.text
    assert marker.exists() == (operator_setting is not None)
