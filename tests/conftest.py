from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import run_cli, write_config  # noqa: E402

# the start-up cache (core/file_cache.py) of this test run, not the user's: the hundreds of temporary folders
# the tests create would otherwise stay in the user's cache file, which every later start reads whole
if not os.environ.get("LOLLMS_CACHE_DIR"):
    _CACHE = tempfile.mkdtemp(prefix="lollms-test-cache-")
    os.environ["LOLLMS_CACHE_DIR"] = _CACHE
    atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A config folder with one dummy instance as the ttt default."""
    d = tmp_path / "cfg"
    write_config(d)
    return d


@pytest.fixture(scope="module")
def default_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The config folder `lollms-server init` writes (the default preset), once per module."""
    d = tmp_path_factory.mktemp("defaults") / "cfg"
    r = run_cli("init", "--config-dir", str(d))
    assert r.returncode == 0, r.stderr
    return d


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI every test must run: a skip (missing model, library or browser) fails the run."""
    if not os.environ.get("CI") or exitstatus != 0:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped:
        for rep in skipped:
            print(f"\nskipped in CI (counts as a failure): {rep.nodeid}: {rep.longrepr}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
