"""`lollms-server models pull` against a local hub speaking the Hugging Face file protocol (tests/fakes/hub_fake.py):
kinds and folder layouts, progress, checksums, resume after a broken connection, hostile file lists."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.hub_fake import HubFake
from helpers import run_cli, write_config

GGUF_Q4 = os.urandom(300_000)
GGUF_Q8 = os.urandom(200_000)
UNET = os.urandom(150_000)
VOICE = os.urandom(120_000)


@pytest.fixture(scope="module")
def hub() -> Iterator[HubFake]:
    fake = HubFake().start()
    fake.add_repo("someone/tiny-llm-GGUF", {"README.md": b"# tiny\n", "tiny.Q4_K_M.gguf": GGUF_Q4, "tiny.Q8_0.gguf": GGUF_Q8})
    fake.add_repo("someone/tiny-sd", {
        "model_index.json": json.dumps({"_class_name": "StableDiffusionPipeline"}).encode(),
        "unet/config.json": b'{"sample_size": 8}', "unet/diffusion_pytorch_model.safetensors": UNET,
        "scheduler/scheduler_config.json": b"{}"})
    fake.add_repo("someone/faster-whisper-tiny", {"config.json": b"{}", "model.bin": os.urandom(50_000),
                                                  "vocabulary.txt": b"a\nb\n", "tokenizer.json": b"{}"})
    fake.add_repo("someone/piper-voices", {
        "en/en_US/amy/low/en_US-amy-low.onnx": VOICE, "en/en_US/amy/low/en_US-amy-low.onnx.json": b'{"audio": {}}',
        "fr/fr_FR/x/low/fr_FR-x-low.onnx": os.urandom(1000), "fr/fr_FR/x/low/fr_FR-x-low.onnx.json": b"{}"})
    fake.add_repo("evil/escape", {"config.json": b"{}"})
    yield fake
    fake.stop()


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    write_config(tmp_path)
    return tmp_path


def _pull(hub: HubFake, cfg: Path, repo: str, *extra: str) -> tuple[int, str, str]:
    r = run_cli("models", "pull", repo, "--config-dir", str(cfg), "--endpoint", hub.url, *extra, timeout=120)
    return r.returncode, r.stdout, r.stderr


def test_gguf_file_goes_to_the_gguf_folder_with_progress(hub: HubFake, cfg: Path) -> None:
    code, out, err = _pull(hub, cfg, "someone/tiny-llm-GGUF", "--include", "*Q4_K_M.gguf")
    assert code == 0, err
    target = cfg / "models" / "gguf" / "tiny.Q4_K_M.gguf"
    assert target.read_bytes() == GGUF_Q4 and out.strip() == str(target)
    assert "kind gguf" in err
    steps = [int(line.split(":")[1].split("%")[0]) for line in err.splitlines() if line.startswith("tiny.Q4_K_M.gguf:")]
    assert len(steps) >= 3 and steps == sorted(steps) and steps[-1] == 100  # progress, not one final line
    assert not (cfg / "models" / "gguf" / "tiny.Q8_0.gguf").exists()
    assert not list((cfg / "models").rglob("*.part"))


def test_several_gguf_files_need_a_choice(hub: HubFake, cfg: Path) -> None:
    code, _, err = _pull(hub, cfg, "someone/tiny-llm-GGUF")
    assert code == 0, err  # distinct names: all of them are fetched
    assert sorted(p.name for p in (cfg / "models" / "gguf").iterdir()) == ["README.md", "tiny.Q4_K_M.gguf", "tiny.Q8_0.gguf"]


def test_diffusers_repository_keeps_its_layout(hub: HubFake, cfg: Path) -> None:
    code, _, err = _pull(hub, cfg, "someone/tiny-sd")
    assert code == 0, err
    folder = cfg / "models" / "diffusers_models" / "tiny-sd"
    assert (folder / "model_index.json").is_file() and (folder / "unet" / "diffusion_pytorch_model.safetensors").read_bytes() == UNET
    r = run_cli("models", "pull", "someone/tiny-sd", "--config-dir", str(cfg), "--endpoint", hub.url)
    assert r.returncode == 0  # already there and verified: nothing downloaded again
    assert len([q for q in hub.requests_to("diffusion_pytorch_model.safetensors") if q.path.startswith("/cdn/")]) == 1


def test_whisper_and_piper_land_where_their_bindings_look(hub: HubFake, cfg: Path) -> None:
    code, _, err = _pull(hub, cfg, "someone/faster-whisper-tiny")
    assert code == 0 and "kind stt" in err, err
    assert (cfg / "models" / "stt" / "faster-whisper-tiny" / "model.bin").is_file()
    code, _, err = _pull(hub, cfg, "someone/piper-voices", "--include", "en/en_US/amy/low/*")
    assert code == 0 and "kind tts" in err, err
    assert sorted(p.name for p in (cfg / "models" / "tts").iterdir()) == ["en_US-amy-low.onnx", "en_US-amy-low.onnx.json"]
    assert (cfg / "models" / "tts" / "en_US-amy-low.onnx").read_bytes() == VOICE


def test_broken_connection_resumes_with_a_range_request(hub: HubFake, cfg: Path) -> None:
    hub.reset()
    hub.cut_after["tiny.Q8_0.gguf"] = 70_000
    code, _, err = _pull(hub, cfg, "someone/tiny-llm-GGUF", "--include", "*Q8_0.gguf")
    assert code == 1 and "run it again to resume" in err
    part = cfg / "models" / "gguf" / "tiny.Q8_0.gguf.part"
    assert 0 < part.stat().st_size < len(GGUF_Q8)
    kept = part.stat().st_size
    code, _, err = _pull(hub, cfg, "someone/tiny-llm-GGUF", "--include", "*Q8_0.gguf")
    assert code == 0, err
    assert (cfg / "models" / "gguf" / "tiny.Q8_0.gguf").read_bytes() == GGUF_Q8 and not part.exists()
    ranges = [q.headers.get("range") for q in hub.requests if q.path.startswith("/cdn/")]
    assert ranges == [None, f"bytes={kept}-"]


def test_checksum_mismatch_fails_and_leaves_nothing(hub: HubFake, cfg: Path) -> None:
    hub.corrupt = {"tiny.Q4_K_M.gguf", "README.md"}
    try:
        code, _, err = _pull(hub, cfg, "someone/tiny-llm-GGUF", "--include", "*Q4_K_M.gguf")
        assert code == 1 and "SHA-256" in err and hashlib.sha256(GGUF_Q4).hexdigest() in err
        code, _, err = _pull(hub, cfg, "someone/tiny-llm-GGUF", "--include", "README.md", "--kind", "gguf")
        assert code == 1 and "git blob id" in err
    finally:
        hub.corrupt = set()
    assert not [p for p in (cfg / "models").rglob("*") if p.is_file()]


def test_unknown_repository_and_bad_ids_are_clear_errors(hub: HubFake, cfg: Path) -> None:
    code, _, err = _pull(hub, cfg, "someone/missing")
    assert code == 1 and "no such model repository" in err
    code, _, err = _pull(hub, cfg, "../etc")
    assert code == 1 and "not a hub model id" in err
    code, _, err = _pull(hub, cfg, "someone/tiny-sd", "--name", "../../outside")
    assert code == 1 and "plain folder name" in err


def test_a_file_list_that_leaves_the_models_folder_is_refused(hub: HubFake, cfg: Path) -> None:
    hub.add_repo("evil/escape", {"../../main_config.yaml": b"pwned", "config.json": b"{}"})
    code, _, err = _pull(hub, cfg, "evil/escape")
    assert code == 1 and "would leave the model folder" in err
    assert "pwned" not in (cfg / "main_config.yaml").read_text()


def test_installer_menu_entry_downloads_a_model(hub: HubFake, cfg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_wizard_interactive import Tty

    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    m = Tty("menu", "--config-dir", str(cfg), log=tmp_path / "tty.log")
    m.choose("lollms_server installer menu", "Download a model")
    m.answer("Hub model id", "someone/tiny-llm-GGUF")
    m.answer("Only files matching", "*Q8_0.gguf")
    m.choose("Kind of model", "gguf")
    m.confirm("Run: lollms-server models pull someone/tiny-llm-GGUF", yes=True)
    m.expect("Downloaded.")
    m.choose("lollms_server installer menu", "Exit")
    assert m.finish() == 0
    assert (cfg / "models" / "gguf" / "tiny.Q8_0.gguf").read_bytes() == GGUF_Q8
