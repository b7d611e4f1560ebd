"""Fixtures and helpers shared by the remote binding tests."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from fakes.base import FakeServer
from helpers import write_config

FakeT = TypeVar("FakeT", bound=FakeServer)


def remote_config(tmp_path: Path, instances: dict[str, tuple[str, dict[str, Any]]], default: str | None = None,
                  main: dict[str, dict[str, Any]] | None = None) -> Path:
    d = tmp_path / "cfg"
    first = default or next(iter(instances))
    gen_type = "tti" if instances[first][0] == "dalle_binding" else "ttt"
    write_config(d, instances, defaults={f"{gen_type}_binding": first}, main=main)
    return d


@contextlib.contextmanager
def running(fake_type: type[FakeT]) -> Iterator[FakeT]:
    """A started fake provider server, stopped on leaving the block."""
    fake = fake_type().start()
    try:
        yield fake
    finally:
        fake.stop()


def fake_fixture(fake_type: type[FakeT], name: str) -> Callable[[], Iterator[FakeT]]:
    """A pytest fixture called ``name`` giving a fresh running ``fake_type`` to each test."""

    def make() -> Iterator[FakeT]:
        with running(fake_type) as fake:
            yield fake

    return pytest.fixture(name=name)(make)


def prompt(text: str, **extra: Any) -> dict[str, Any]:
    return {"input_data": [{"type": "text", "role": "user_prompt", "data": text}], **extra}


class LogCapture(logging.Handler):
    """Collects every formatted log record of the process (after the redacting filter ran)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def text(self) -> str:
        return "\n".join(self.lines)
