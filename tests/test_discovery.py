"""Extensions from installed packages (entry points), the zoo inside the wheel, visible load failures,
and the generation parameters each binding declares (served by list_bindings, checked on requests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import httpx
import pytest
from helpers import API_KEY, ServerProcess, api_client, write_config

PROJECT = Path(__file__).resolve().parents[1]

EP_BINDING = '''
from lollms_server.core.bindings import Binding

class ShoutBinding(Binding):
    binding_type_name = "shout_binding"
    supports_streaming = False

    async def list_available_models(self):
        return [{"name": "loud"}]

    async def generate(self, task):
        return task.prompt.upper() + "!" * int(task.params.get("bangs", 1))
'''

EP_CARD = '''
type_name: shout_binding
display_name: Shout
version: "0.1.0"
author: tests
description: Answers in capitals.
supports_streaming: false
supported_input_modalities: [text]
supported_output_modalities: [text]
generation_types: [ttt]
generation_parameters:
  bangs: {type: integer, default: 1, minimum: 0, maximum: 5, instance_default: default_bangs, help: "Exclamation marks."}
instance_schema:
  __version__: "0.1.0"
  default_model: {type: str, default: loud, help: Model.}
  default_bangs: {type: int, default: 1, help: Default exclamation marks.}
'''

EP_TOOLS = '''
async def shout(text: str) -> str:
    """Shout a text.

    Args:
        text: What to shout.
    """
    return text.upper()

async def _private() -> None:
    pass
'''


def make_distribution(root: Path) -> Path:
    """An installed distribution (package + .dist-info with entry points) in ``root``, importable once on sys.path."""
    pkg = root / "shout_ext"
    (pkg / "binding").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "binding" / "__init__.py").write_text(EP_BINDING)
    (pkg / "binding" / "binding_card.yaml").write_text(EP_CARD)
    (pkg / "tools.py").write_text(EP_TOOLS)
    persona = pkg / "personas" / "fun" / "jester"
    persona.mkdir(parents=True)
    (pkg / "personas" / "__init__.py").write_text("")
    (persona / "config.yaml").write_text("name: Jester\npersonality_conditioning: You joke.\n")
    info = root / "shout_ext-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shout-ext\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""\
        [lollms_server.bindings]
        shout_binding = shout_ext.binding

        [lollms_server.functions]
        shout_tools = shout_ext.tools
        broken_tools = shout_ext.missing_module

        [lollms_server.personalities]
        shout_personas = shout_ext.personas
        """))
    return root


@pytest.fixture
def ep_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(make_distribution(tmp_path / "site")))
    d = tmp_path / "cfg"
    write_config(d)
    (d / "bindings" / "loud.yaml").write_text("type: shout_binding\nbinding_instance_name: loud\ndefault_bangs: 3\n")
    (d / "bindings" / "quiet.yaml").write_text("type: shout_binding\nbinding_instance_name: quiet\n")
    main = d / "main_config.yaml"
    main.write_text(main.read_text().replace("bindings_map:\n", "bindings_map:\n  loud: shout_binding\n  quiet: shout_binding\n"))
    return d


def ask(text: str, **extra: object) -> dict[str, object]:
    return {"input_data": [{"type": "text", "role": "user_prompt", "data": text}], **extra}


async def test_entry_point_binding_functions_and_personalities(ep_config: Path) -> None:
    async with api_client(ep_config) as c:
        listing = (await c.get("/api/v1/list_bindings")).json()
        shout = listing["binding_types"]["shout_binding"]
        assert shout["source"] == "entry_point"
        assert shout["parameters"] == [{
            "name": "bangs", "type": "integer", "default": 1, "minimum": 0, "maximum": 5, "choices": None,
            "help": "Exclamation marks.", "generation_types": ["ttt"]}]
        # per-instance default (from the instance setting the card names) only where it differs
        assert listing["binding_instances"]["loud"]["parameters"][0]["default"] == 3
        assert "parameters" not in listing["binding_instances"]["quiet"]

        r = await c.post("/api/v1/generate", json=ask("hey", binding_name="loud", parameters={"bangs": 2}))
        assert r.status_code == 200, r.text
        assert r.json()["output"][0]["data"] == "HEY!!"
        bad = await c.post("/api/v1/generate", json=ask("hey", binding_name="loud", parameters={"bangs": 9}))
        assert bad.status_code == 400 and "parameters.bangs" in bad.json()["detail"] and "at most 5" in bad.json()["detail"]
        wrong_type = await c.post("/api/v1/generate", json=ask("hey", binding_name="loud", parameters={"bangs": "two"}))
        assert wrong_type.status_code == 400 and "integer" in wrong_type.json()["detail"]

        functions = (await c.get("/api/v1/list_functions")).json()
        assert "shout_tools.shout" in functions["functions"] and "shout_tools._private" not in functions["functions"]
        assert "broken_tools (entry point)" in functions["load_errors"]
        assert "shout_ext.missing_module" in functions["load_errors"]["broken_tools (entry point)"]

        personalities = (await c.get("/api/v1/list_personalities")).json()["personalities"]
        assert "fun/jester" in personalities and personalities["fun/jester"]["name"] == "fun/jester"
        r = await c.post("/api/v1/generate", json=ask("hi", personality="jester"))  # bare folder name, unambiguous
        assert r.status_code == 200, r.text


async def test_every_zoo_binding_declares_its_parameters(config_dir: Path) -> None:
    async with api_client(config_dir) as c:
        types = (await c.get("/api/v1/list_bindings")).json()["binding_types"]
    keys = {"name", "type", "default", "minimum", "maximum", "choices", "help", "generation_types"}
    for name, info in types.items():
        if set(info["generation_types"]) - {"embed"}:
            assert info["parameters"], f"{name} declares no generation parameters"
        for p in info["parameters"]:
            assert set(p) == keys, (name, p)
            assert p["type"] in ("integer", "number", "string", "boolean", "array", "object")
            assert p["help"] and p["generation_types"]
            assert set(p["generation_types"]) <= set(info["generation_types"]), (name, p)
    llama = {p["name"]: p for p in types["llamacpp_binding"]["parameters"]}
    assert llama["temperature"]["minimum"] == 0 and llama["temperature"]["type"] == "number"
    assert llama["max_tokens"]["type"] == "integer"
    whisper = {p["name"]: p for p in types["whisper_stt_binding"]["parameters"]}
    assert whisper["task"]["choices"] == ["transcribe", "translate"]


async def test_declared_parameters_are_checked_before_generation(config_dir: Path) -> None:
    async with api_client(config_dir) as c:
        r = await c.post("/api/v1/generate", json=ask("x", parameters={"max_tokens": "many"}))
        assert r.status_code == 400 and "max_tokens" in r.json()["detail"]
        r = await c.post("/api/v1/generate", json=ask("x", binding_name="dummy", generation_type="tti", parameters={"width": 0}))
        assert r.status_code == 400 and "parameters.width" in r.json()["detail"]
        r = await c.post("/api/v1/generate", json=ask("a b c d", parameters={"max_tokens": 2, "unknown_knob": [1]}))
        assert r.status_code == 200 and r.json()["output"][0]["data"] == "a b"


PERSONAL_BROKEN = '''
raise ImportError("this personal binding is broken on purpose")
'''


async def test_broken_personal_binding_does_not_fall_back_to_the_zoo(config_dir: Path) -> None:
    folder = config_dir / "personal_bindings" / "my_dummy"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(PERSONAL_BROKEN)
    (folder / "binding_card.yaml").write_text((PROJECT / "zoos/bindings/dummy_binding/binding_card.yaml").read_text())
    async with api_client(config_dir) as c:
        listing = (await c.get("/api/v1/list_bindings")).json()
        assert "dummy_binding" not in listing["binding_types"]
        assert "broken on purpose" in listing["load_errors"]["dummy_binding"]
        assert "not used instead" in listing["load_errors"]["dummy_binding"]
        assert "broken on purpose" in listing["load_errors"]["dummy"]  # the instance says why
        r = await c.post("/api/v1/generate", json=ask("hello"))
        assert r.status_code == 503 and "broken on purpose" in r.json()["detail"]


async def test_broken_function_file_and_workflow_are_listed(config_dir: Path) -> None:
    funcs = config_dir / "personal_functions"
    funcs.mkdir()
    (funcs / "good.py").write_text("async def ok() -> int:\n    return 1\n")
    (funcs / "bad.py").write_text("import not_a_real_module_xyz\n")
    wf = config_dir / "personal_personalities" / "scripted"
    (wf / "scripts").mkdir(parents=True)
    (wf / "config.yaml").write_text("name: scripted\nscript_path: scripts/workflow.py\n")
    (wf / "scripts" / "workflow.py").write_text("def run_workflow(prompt, params, context):\n    return 'sync'\n")
    async with api_client(config_dir) as c:
        functions = (await c.get("/api/v1/list_functions")).json()
        assert functions["functions"] == ["good.ok"] or "good.ok" in functions["functions"]
        assert "not_a_real_module_xyz" in functions["load_errors"]["bad"]
        personalities = (await c.get("/api/v1/list_personalities")).json()
        assert "scripted" not in personalities["personalities"]
        assert "async def run_workflow" in personalities["load_errors"]["scripted"]


def test_wheel_carries_the_zoo_and_serves(tmp_path: Path) -> None:
    """pip install of the built wheel (not the checkout) gives a server with the zoo bindings and personalities."""
    wheels = tmp_path / "wheels"
    source = tmp_path / "source"  # a clean copy: the build leaves nothing in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy2(PROJECT / name, source / name)
    for name in ("lollms_server", "zoos"):
        shutil.copytree(PROJECT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels),
                    str(source)], check=True, capture_output=True, timeout=300)
    wheel = next(wheels.glob("lollms_server-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "lollms_server/zoos/bindings/dummy_binding/binding_card.yaml" in names
    assert "lollms_server/zoos/personalities/lollms/config.yaml" in names
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(target),
                    str(wheel)], check=True, capture_output=True, timeout=300)
    cfg = tmp_path / "cfg"
    write_config(cfg)
    extension = make_distribution(tmp_path / "ext")  # an extension package installed beside it
    env = {"PYTHONPATH": f"{target}{os.pathsep}{extension}"}
    with ServerProcess(cfg, env=env, cwd=tmp_path) as srv:
        h = {"X-API-Key": API_KEY}
        info = httpx.get(f"{srv.base_url}/api/v1/list_bindings", headers=h, timeout=10).json()
        assert info["binding_types"]["dummy_binding"]["source"] == "zoo"
        assert info["binding_types"]["shout_binding"]["source"] == "entry_point"
        path = httpx.get(f"{srv.base_url}/api/v1/list_personalities", headers=h, timeout=10).json()[
            "personalities"]["lollms"]["path"]
        assert path.startswith("lollms_server/zoos/"), path  # served from the package, not a checkout's zoos/
        r = httpx.post(f"{srv.base_url}/api/v1/generate", headers=h, json=ask("from the wheel"), timeout=30)
        assert r.status_code == 200 and r.json()["output"][0]["data"] == "from the wheel"


MISMATCHED = '''
from lollms_server.core.bindings import Binding

class Mixed(Binding):
    binding_type_name = "mixed_binding"
    supports_streaming = True          # the card below says false
    generation_types = frozenset({"ttt"})

    async def list_available_models(self):
        return []

    async def generate(self, task):
        return "x"
'''

MIXED_CARD = '''
type_name: mixed_binding
supports_streaming: false
generation_types: [ttt]
instance_schema: {}
'''

SUBCLASS = '''
from lollms_server.core.bindings.registry import zoo_module

class EchoOnly(zoo_module("dummy_binding").DummyBinding):
    binding_type_name = "echo_only_binding"
'''

SUBCLASS_CARD = '''
type_name: echo_only_binding
supports_streaming: false
supported_input_modalities: [text]
supported_output_modalities: [text]
generation_types: [ttt]
instance_schema: {}
'''


async def test_capabilities_have_one_source(config_dir: Path) -> None:
    for folder, code, card in (("mixed", MISMATCHED, MIXED_CARD), ("echo_only", SUBCLASS, SUBCLASS_CARD)):
        target = config_dir / "personal_bindings" / folder
        target.mkdir(parents=True)
        (target / "__init__.py").write_text(code)
        (target / "binding_card.yaml").write_text(card)
    async with api_client(config_dir) as c:
        listing = (await c.get("/api/v1/list_bindings")).json()
    # written twice and different: refused, with both values
    assert "mixed_binding" not in listing["binding_types"]
    error = listing["load_errors"]["mixed_binding"]
    assert "supports_streaming = False" in error and "supports_streaming = True" in error
    # values the zoo class got from its own card are not a second declaration for a subclass with its own card
    echo_only = listing["binding_types"]["echo_only_binding"]
    assert echo_only["supports_streaming"] is False and echo_only["generation_types"] == ["ttt"]
    assert listing["binding_types"]["dummy_binding"]["supports_streaming"] is True
