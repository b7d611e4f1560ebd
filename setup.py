"""Packaging hook: the wheel carries the zoo (zoos/ of the checkout) as lollms_server/zoos.

Everything else is in pyproject.toml. A checkout keeps zoos/ at the project root (the layout of the
specification); an installed wheel finds it inside the package (see lollms_server.core.paths.ZOOS_DIR).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ZOO_SOURCE = Path(__file__).resolve().parent / "zoos"
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


class BuildPyWithZoo(build_py):
    def run(self) -> None:
        super().run()
        if ZOO_SOURCE.is_dir():
            target = Path(self.build_lib) / "lollms_server" / "zoos"
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(ZOO_SOURCE, target, ignore=SKIP)


setup(cmdclass={"build_py": BuildPyWithZoo})
