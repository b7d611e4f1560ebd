"""lollms-client (PyPI), unchanged, with its default `lollms` binding against a real server process."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from helpers import API_KEY, ServerProcess, write_config

pytest.importorskip("openai", reason="openai client not installed (dev extra)")
lollms_client = pytest.importorskip("lollms_client", reason="lollms-client not installed (dev extra)")
from lollms_client import LollmsClient  # noqa: E402
from lollms_client.lollms_types import MSG_TYPE  # noqa: E402

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    cfg = tmp_path_factory.mktemp("lc") / "cfg"
    write_config(cfg, {"dummy": ("dummy_binding", {}), "thinker": ("dummy_binding", {"mode": "think"})})
    terse = cfg / "personal_personalities" / "terse"
    terse.mkdir(parents=True)
    (terse / "config.yaml").write_text("name: terse\npersonality_conditioning: Be terse.\nparameters:\n  max_tokens: 2\n")
    with ServerProcess(cfg) as server:
        yield server


def _client(srv: ServerProcess, model: str | None = None, key: str = API_KEY) -> LollmsClient:
    config: dict[str, Any] = {"host_address": srv.base_url, "service_key": key}
    if model:
        config["model_name"] = model
    return LollmsClient(llm_binding_name="lollms", llm_binding_config=config)


def test_generate_text_plain_and_streaming_with_thoughts(srv: ServerProcess) -> None:
    assert _client(srv, "dummy").generate_text("hello there friend", stream=False) == "hello there friend"
    lc = _client(srv, "thinker")
    received: list[tuple[str, Any]] = []

    def on_chunk(chunk: str, kind: Any, *rest: Any) -> bool:
        received.append((chunk, kind))
        return True

    out = lc.generate_text("hello there friend", stream=True, think=True, streaming_callback=on_chunk)
    thought = "".join(c for c, k in received if k == MSG_TYPE.MSG_TYPE_THOUGHT_CHUNK)
    answer = "".join(c for c, k in received if k == MSG_TYPE.MSG_TYPE_CHUNK)
    assert thought == "The user said: hello there friend"
    assert answer == "hello there friend"
    assert out.endswith("</think>\nhello there friend") and "The user said: hello there friend" in out
    # with thinking off the client keeps the answer only
    assert lc.generate_text("hello there friend", stream=False) == "hello there friend"


def test_generate_from_messages_and_personality_model(srv: ServerProcess) -> None:
    lc = _client(srv, "dummy")
    out = lc.generate_from_messages([{"role": "system", "content": "be kind"}, {"role": "user", "content": "one two three"}])
    assert out == "one two three"
    assert _client(srv, "personality:terse").generate_text("one two three four", stream=False) == "one two"


def test_tokenizer_and_personalities_come_from_the_server(srv: ServerProcess) -> None:
    lc = _client(srv, "dummy")
    tokens = lc.tokenize("hi")
    assert tokens == [ord("h") + 3, ord("i") + 3]  # the dummy binding's byte tokenizer, not tiktoken's
    assert lc.detokenize(tokens) == "hi"
    assert lc.count_tokens("hello") == 5
    listed = lc.listMountedPersonalities()
    assert "personality:terse" in [p["id"] for p in listed["data"]]


def test_models_and_auto_detected_model(srv: ServerProcess) -> None:
    lc = _client(srv)  # no model_name: the client picks the first id of GET /v1/models
    assert lc.llm.model_name == "dummy"
    names = [m["model_name"] for m in lc.list_models()]
    assert {"dummy", "thinker", "dummy/dummy-vision", "personality:terse"} <= set(names)
    assert lc.generate_text("auto model works", stream=False) == "auto model works"


def test_wrong_key_is_reported_as_an_error(srv: ServerProcess) -> None:
    out = _client(srv, "dummy", key="wrong-key").generate_text("hello", stream=False)
    assert isinstance(out, dict) and out["status"] == "error"
    assert "401" in out["message"] and "wrong-key" not in str(out.get("server_body"))
