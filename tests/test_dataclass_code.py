"""The compiled methods of start-up's dataclasses, kept between starts (core/dataclass_code.py).

A dataclass built with the cache must be the dataclass Python builds without it; the cache holds exactly
what compiling each text gives; a file someone else could have written, or a damaged one, is never used;
`serve` writes the cache once its start-up is done. Its effect on start-up time is a figure of
bench/bench_startup.py.
"""

from __future__ import annotations

import dataclasses
import marshal
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import server

from lollms_server.core import dataclass_code


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "cache"
    monkeypatch.setenv("LOLLMS_CACHE_DIR", str(folder))
    yield folder
    dataclass_code.settle()


def _define() -> tuple[Any, Any]:
    """Two dataclasses using most of what @dataclass writes (init with defaults and factories, repr, eq,
    order, frozen, hash, __post_init__), defined anew at each call."""

    @dataclasses.dataclass(order=True)
    class Point:
        x: int
        y: int = 0
        tags: list[str] = dataclasses.field(default_factory=list, compare=False)
        seen: int = dataclasses.field(default=0, init=False, repr=False)

        def __post_init__(self) -> None:
            self.seen = self.x + self.y

    @dataclasses.dataclass(frozen=True)
    class Key:
        name: str
        version: int = 1

    return Point, Key


def _behaviour(point: Any, key: Any) -> list[Any]:
    a, b = point(1, 2, ["t"]), point(1, 3)
    frozen_error = None
    k = key("a")
    try:
        k.name = "b"
    except dataclasses.FrozenInstanceError as exc:
        frozen_error = type(exc).__name__
    return [repr(a), a == point(1, 2), a < b, sorted([b, a]) == [a, b], a.seen, a.tags, b.tags is not a.tags,
            repr(k), hash(k) == hash(key("a")), k == key("a", 1), frozen_error, point.__doc__, key.__doc__,
            [f.name for f in dataclasses.fields(point)]]


def test_a_dataclass_built_from_the_cache_is_the_one_python_builds(cache: Path) -> None:
    expected = _behaviour(*_define())  # no cache installed: Python's own
    dataclass_code.install()
    assert "exec" in vars(dataclasses)
    first = _behaviour(*_define())
    dataclass_code.settle()
    assert "exec" not in vars(dataclasses)  # the standard exec() again
    file = dataclass_code.cache_file()
    assert file is not None and file.is_file()
    assert file.stat().st_mode & 0o777 == 0o600

    dataclass_code.install()
    again = _behaviour(*_define())
    assert dataclass_code._compiled == 0  # every method came from the file
    dataclass_code.settle()
    assert first == expected and again == expected


def test_the_cache_holds_what_compiling_each_text_gives(cache: Path) -> None:
    dataclass_code.install()
    _define()
    dataclass_code.settle()
    file = dataclass_code.cache_file()
    assert file is not None
    codes = marshal.loads(file.read_bytes())
    assert len(codes) >= 8  # two classes' methods
    for text, code in codes.items():
        assert compile(text, "<string>", "exec", dont_inherit=True) == code


def _written(cache: Path) -> Path:
    dataclass_code.install()
    _define()
    dataclass_code.settle()
    file = dataclass_code.cache_file()
    assert file is not None and file.is_file()
    return file


@pytest.mark.skipif(os.name != "posix", reason="mode bits are POSIX")
@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_cache_others_could_have_written_is_not_used(cache: Path, what: str) -> None:
    file = _written(cache)
    (file if what == "file" else file.parent).chmod(0o666 if what == "file" else 0o777)
    dataclass_code.install()
    assert _behaviour(*_define())[0].endswith("Point(x=1, y=2, tags=['t'])")
    assert dataclass_code._compiled > 0  # compiled again: the file was not trusted
    dataclass_code.settle()


@pytest.mark.parametrize("content", [b"", b"\x00garbage", marshal.dumps(["not", "a", "dict"]),
                                     marshal.dumps({"def f(): pass": "not code"})])
def test_a_damaged_cache_is_no_cache(cache: Path, content: bytes) -> None:
    file = _written(cache)
    file.write_bytes(content)
    dataclass_code.install()
    assert _behaviour(*_define())[0].endswith("Point(x=1, y=2, tags=['t'])")
    assert dataclass_code._compiled > 0
    dataclass_code.settle()
    assert isinstance(marshal.loads(file.read_bytes()), dict)  # replaced by a sound one


def test_nothing_changes_with_the_cache_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOLLMS_CACHE_DIR", "off")
    dataclass_code.install()
    assert "exec" not in vars(dataclasses)
    dataclass_code.settle()


@pytest.mark.e2e
def test_serve_keeps_the_methods_of_its_start_up_for_the_next_start(tmp_path: Path, config_dir: Path) -> None:
    cache = tmp_path / "serve-cache"
    env = {"LOLLMS_CACHE_DIR": str(cache)}
    file = cache / f"dataclass_code.{sys.implementation.cache_tag}.marshal"
    with server(config_dir, env=env) as srv:
        assert httpx.get(f"{srv.base_url}/health/ready", timeout=10).status_code == 200
    written = marshal.loads(file.read_bytes())
    assert len(written) > 100  # the dataclasses of the server and its libraries
    stamp = file.stat().st_mtime_ns
    with server(config_dir, env=env) as srv:
        assert httpx.get(f"{srv.base_url}/health/ready", timeout=10).status_code == 200
    assert file.stat().st_mtime_ns == stamp  # the second start compiled nothing new: the file is unchanged


def test_no_home_folder_is_no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOLLMS_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    dataclass_code.install()
    assert "exec" not in vars(dataclasses)
    assert _behaviour(*_define())[0].endswith("Point(x=1, y=2, tags=['t'])")
    dataclass_code.settle()
