from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import write_config  # noqa: E402


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A config folder with one dummy instance as the ttt default."""
    d = tmp_path / "cfg"
    write_config(d)
    return d
