"""End-to-end: a real `lollms-server` process over HTTP (auth, streaming, cancel, queue, encryption, plugins)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from helpers import API_KEY, server, sse_events, write_config

pytestmark = pytest.mark.e2e
H = {"X-API-Key": API_KEY}
SECRET = "sk-e2e-secret-value-9876"


def prompt(words: int) -> dict[str, Any]:
    return {"type": "text", "role": "user_prompt", "data": " ".join(f"w{i}" for i in range(words))}


def wait_for(predicate, timeout: float = 3.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Any:
    d = tmp_path_factory.mktemp("e2e") / "cfg"
    write_config(
        d,
        {
            "dummy": ("dummy_binding", {"api_key": SECRET}),
            "slow": ("dummy_binding", {"requires_gpu": True, "stream_chunk_delay": 0.1}),
            "sleepy": ("dummy_binding", {"requires_gpu": True, "delay": 30.0}),
            "thinker": ("dummy_binding", {"mode": "think", "stream_chunk_delay": 0.01}),
            "broken": ("dummy_binding", {"mode": "fail_load"}),
        },
        defaults={"ttt_binding": "dummy"},
        main={"resource_manager": {"gpu_strategy": "semaphore", "gpu_limit": 1, "queue_timeout": 2},
              "server": {"keepalive_interval": 0.2}},
    )
    pb = d / "personal_bindings" / "broken_type"
    pb.mkdir(parents=True)
    (pb / "binding_card.yaml").write_text("type_name: broken_type\ninstance_schema: {}\n")
    (pb / "__init__.py").write_text("def broken(:\n")
    with server(d) as s:
        yield s


def resources(base: str) -> dict[str, Any]:
    return httpx.get(f"{base}/api/v1/resources", headers=H).json()  # type: ignore[no-any-return]


def test_auth_and_generate_over_http(live: Any) -> None:
    base = live.base_url
    assert httpx.get(f"{base}/health").json()["api_key_required"] is True
    assert httpx.get(f"{base}/api/v1/list_bindings").status_code == 403
    assert httpx.get(f"{base}/api/v1/list_bindings", headers={"X-API-Key": "bad"}).status_code == 401
    r = httpx.post(f"{base}/api/v1/generate", headers=H, json={"input_data": [prompt(3)]})
    assert r.status_code == 200 and r.json()["output"][0]["data"] == "w0 w1 w2"


def test_streaming_over_http_with_thoughts(live: Any) -> None:
    with httpx.stream("POST", f"{live.base_url}/api/v1/generate", headers=H,
                      json={"input_data": [prompt(5)], "binding_name": "thinker", "stream": True}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        body = r.read().decode()
    events = sse_events(body)
    assert events[-1]["type"] == "final" and [e["type"] for e in events].count("final") == 1
    assert events[-1]["content"][0]["data"] == "w0 w1 w2 w3 w4"
    assert events[-1]["content"][0]["thoughts"].startswith("The user said")


def test_keepalive_comments_while_waiting(live: Any) -> None:
    with httpx.stream("POST", f"{live.base_url}/api/v1/generate", headers=H,
                      json={"input_data": [prompt(8)], "binding_name": "slow", "stream": True}) as r:
        raw = r.read().decode()
    assert ": ping" in raw
    assert sse_events(raw)[-1]["type"] == "final"


def test_disconnect_mid_stream_frees_the_slot(live: Any) -> None:
    base = live.base_url
    with httpx.stream("POST", f"{base}/api/v1/generate", headers=H,
                      json={"input_data": [prompt(300)], "binding_name": "slow", "stream": True}) as r:
        lines = r.iter_lines()  # keep the iterator alive: dropping it closes the response
        for line in lines:
            if line.startswith("data: ") and json.loads(line[6:])["type"] == "chunk":
                break
        assert resources(base)["active"] == 1
    assert wait_for(lambda: resources(base)["active"] == 0, 2.0), resources(base)
    r = httpx.post(f"{base}/api/v1/generate", headers=H, json={"input_data": [prompt(2)], "binding_name": "slow"})
    assert r.status_code == 200


def test_disconnect_before_first_token_and_while_queued(live: Any) -> None:
    base = live.base_url
    with httpx.stream("POST", f"{base}/api/v1/generate", headers=H,
                      json={"input_data": [prompt(2)], "binding_name": "sleepy", "stream": True}) as first:
        assert wait_for(lambda: resources(base)["active"] == 1)
        with httpx.stream("POST", f"{base}/api/v1/generate", headers=H,
                          json={"input_data": [prompt(2)], "binding_name": "slow", "stream": True}) as second:
            assert second.status_code == 200
            assert wait_for(lambda: resources(base)["waiting"] == 1)
        assert wait_for(lambda: resources(base)["waiting"] == 0, 2.0), "queued request left the queue"
        assert first.status_code == 200
    assert wait_for(lambda: resources(base)["active"] == 0, 2.0), "sleeping request was cancelled"


def test_non_streaming_disconnect_cancels(live: Any) -> None:
    base = live.base_url
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{base}/api/v1/generate", headers=H, json={"input_data": [prompt(2)], "binding_name": "sleepy"}, timeout=0.5)
    assert wait_for(lambda: resources(base)["active"] == 0, 2.0)


def test_queue_timeout_408_and_stream_error(live: Any) -> None:
    base = live.base_url
    with httpx.stream("POST", f"{base}/api/v1/generate", headers=H,
                      json={"input_data": [prompt(2)], "binding_name": "sleepy", "stream": True}):
        assert wait_for(lambda: resources(base)["active"] == 1)
        r = httpx.post(f"{base}/api/v1/generate", headers=H, json={"input_data": [prompt(2)], "binding_name": "slow"}, timeout=10)
        assert r.status_code == 408 and "compute slot" in r.json()["detail"]
        r = httpx.post(f"{base}/api/v1/generate", headers=H, timeout=10,
                       json={"input_data": [prompt(2)], "binding_name": "slow", "stream": True})
        events = sse_events(r.text)
        assert [e["type"] for e in events] == ["error", "final"] and events[1]["content"][0]["type"] == "error"
    assert wait_for(lambda: resources(base)["active"] == 0, 2.0)


def test_broken_things_are_visible_and_secrets_never_leak(live: Any) -> None:
    body = httpx.get(f"{live.base_url}/api/v1/list_bindings", headers=H).json()
    errors = body["load_errors"]
    assert "fail_load" in errors["broken"] and "broken_type" in errors and "SyntaxError" in errors["broken_type"]
    assert body["binding_instances"]["dummy"]["api_key"] == "********"
    assert SECRET not in json.dumps(body)
    assert SECRET not in live.log()


def test_encrypted_instance_and_personal_override_in_real_process(tmp_path: Path) -> None:
    key = Fernet.generate_key()
    d = tmp_path / "cfg"
    write_config(d, {"dummy": ("dummy_binding", {"api_key": SECRET})}, key=key)
    assert SECRET.encode() not in (d / "bindings" / "dummy.yaml").read_bytes()
    pb = d / "personal_bindings" / "dummy_binding"
    pb.mkdir(parents=True)
    (pb / "binding_card.yaml").write_text((Path(__file__).parents[1] / "zoos/bindings/dummy_binding/binding_card.yaml").read_text())
    (pb / "__init__.py").write_text(
        "from lollms_server.core.bindings.registry import zoo_module\n"
        "Base = zoo_module('dummy_binding').DummyBinding\n\n"
        "class PersonalDummy(Base):\n"
        "    binding_type_name = 'dummy_binding'\n"
        "    async def generate(self, task):\n"
        "        return 'personal: ' + task.prompt\n"
    )
    with server(d, env={"LOLLMS_ENCRYPTION_KEY": key.decode()}) as s:
        r = httpx.post(f"{s.base_url}/api/v1/generate", headers=H, json={"input_data": [prompt(2)]})
        assert r.status_code == 200 and r.json()["output"][0]["data"] == "personal: w0 w1"
        types = httpx.get(f"{s.base_url}/api/v1/list_bindings", headers=H).json()["binding_types"]
        assert types["dummy_binding"]["source"] == "personal"
        assert SECRET not in s.log()
