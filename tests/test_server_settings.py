"""server.workers (refused above 1, with the reason) and logging.log_level in any case, through the real CLI."""

from __future__ import annotations

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
