"""Static checks over the package and the zoo: mypy (fully typed) and ruff (the bug-finding rules of
pyproject.toml's [tool.ruff.lint]; the formatter is not enforced)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_package_type_checks() -> None:
    res = _run("mypy", "--ignore-missing-imports", "--no-error-summary", "lollms_server")
    assert res.returncode == 0, res.stdout + res.stderr


def test_zoo_type_checks() -> None:
    """Bindings, personality workflows and functions of zoos/ (namespace packages: explicit package bases)."""
    res = _run("mypy", "--ignore-missing-imports", "--explicit-package-bases", "--no-error-summary", "zoos")
    assert res.returncode == 0, res.stdout + res.stderr


def test_ruff_finds_nothing_in_the_package_and_the_zoo() -> None:
    res = _run("ruff", "check", "--no-cache", "lollms_server", "zoos")
    assert res.returncode == 0, res.stdout + res.stderr
