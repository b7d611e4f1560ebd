"""Bring your own key: X-Provider-Api-Key / X-Provider-Base-Url reach the upstream only where allowed, never leak."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from fakes.gemini_fake import FakeGemini
from fakes.ollama_fake import FakeOllama
from fakes.openai_fake import FakeOpenAI
from helpers import API_KEY, api_client, server, sse_events
from lollms_server.core.secrets import REDACTOR
from remote_common import fake_fixture, prompt, remote_config, running

INSTANCE_KEY = "sk-instance-own-key-1111"
USER_KEY = "sk-user-brought-key-9999"


fake_openai = fake_fixture(FakeOpenAI, "fake_openai")


def oa(fake: FakeOpenAI, **values: Any) -> tuple[str, dict[str, Any]]:
    return ("openai_binding", {"base_url": f"{fake.url}/v1", "api_key": INSTANCE_KEY, "api_key_env": None,
                               "default_model": "gpt-fake", "max_retries": 0, **values})


def chat_keys(fake: Any) -> list[str]:
    return [q.headers.get("authorization", "") for q in fake.requests_to("/chat/completions")]


async def test_request_key_is_used_for_that_request_only(tmp_path: Path, fake_openai: FakeOpenAI,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    cfg = remote_config(tmp_path, {"oa": oa(fake_openai, allow_request_credentials=True)})
    async with api_client(cfg) as c:
        r1 = await c.post("/api/v1/generate", json=prompt("mine"), headers={"X-Provider-Api-Key": USER_KEY})
        r2 = await c.post("/api/v1/generate", json=prompt("mine", stream=True), headers={"X-Provider-Api-Key": USER_KEY})
        r3 = await c.post("/api/v1/generate", json=prompt("theirs"))
    assert r1.status_code == r2.status_code == r3.status_code == 200, r1.text
    assert r1.json()["output"][0]["data"] == "echo: mine"
    assert sse_events(r2.text)[-1]["content"][0]["data"] == "echo: mine"
    assert chat_keys(fake_openai) == [f"Bearer {USER_KEY}", f"Bearer {USER_KEY}", f"Bearer {INSTANCE_KEY}"]
    for r in (r1, r2, r3):
        assert USER_KEY not in r.text and USER_KEY not in str(r.headers)
    assert USER_KEY not in caplog.text
    assert REDACTOR.redact(USER_KEY) == USER_KEY  # masked only while its request ran: not kept anywhere


async def test_refused_when_the_instance_does_not_allow_it(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    cfg = remote_config(tmp_path, {"oa": oa(fake_openai)})
    async with api_client(cfg) as c:
        r = await c.post("/api/v1/generate", json=prompt("hi"), headers={"X-Provider-Api-Key": USER_KEY})
        s = await c.post("/api/v1/generate", json=prompt("hi", stream=True), headers={"X-Provider-Api-Key": USER_KEY})
    assert r.status_code == 400 and s.status_code == 400
    assert "allow_request_credentials" in r.json()["detail"]
    assert USER_KEY not in r.text + s.text
    assert not fake_openai.requests


async def test_base_url_header_needs_its_own_setting(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    with running(FakeOpenAI) as other:
        cfg = remote_config(tmp_path, {
            "keyonly": oa(fake_openai, allow_request_credentials=True),
            "anyserver": oa(fake_openai, allow_request_credentials=True, allow_request_base_url=True),
        })
        headers = {"X-Provider-Api-Key": USER_KEY, "X-Provider-Base-Url": f"{other.url}/v1"}
        async with api_client(cfg) as c:
            r = await c.post("/api/v1/generate", json=prompt("hi", binding_name="keyonly"), headers=headers)
            assert r.status_code == 400 and "allow_request_base_url" in r.json()["detail"]
            r = await c.post("/api/v1/generate", json=prompt("hi", binding_name="anyserver"), headers=headers)
            assert r.status_code == 200, r.text
            bad = await c.post("/api/v1/generate", json=prompt("hi", binding_name="anyserver"),
                               headers={"X-Provider-Base-Url": "file:///etc/passwd"})
            assert bad.status_code == 400
        assert not fake_openai.requests
        assert chat_keys(other) == [f"Bearer {USER_KEY}"]


def test_rejected_request_key_never_appears_in_server_log(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.behaviour.required_key = "sk-something-else-entirely"  # the fake quotes the key it got in its 401
    cfg = remote_config(tmp_path, {"oa": oa(fake_openai, allow_request_credentials=True)},
                        main={"logging": {"log_level": "DEBUG"}})
    with server(cfg) as s:
        headers = {"X-API-Key": API_KEY, "X-Provider-Api-Key": USER_KEY}
        r = httpx.post(f"{s.base_url}/api/v1/generate", json=prompt("hi"), headers=headers, timeout=30)
        st = httpx.post(f"{s.base_url}/api/v1/generate", json=prompt("hi", stream=True), headers=headers, timeout=30)
        assert r.status_code == 502 and "rejected the API key" in r.json()["detail"]
        assert [e["type"] for e in sse_events(st.text)] == ["error", "final"]
        assert USER_KEY not in r.text + st.text
        log = s.log()
    assert chat_keys(fake_openai) == [f"Bearer {USER_KEY}"] * 2
    assert USER_KEY not in log


async def test_gemini_instance_without_key_takes_request_keys(tmp_path: Path) -> None:
    with running(FakeGemini) as fake:
        cfg = remote_config(tmp_path, {"gm": ("gemini_binding", {
            "base_url": fake.url, "api_key": None, "api_key_env": None, "default_model": "gemini-fake-flash",
            "allow_request_credentials": True})})
        async with api_client(cfg) as c:
            r = await c.post("/api/v1/generate", json=prompt("byok"), headers={"X-Provider-Api-Key": USER_KEY})
            assert r.status_code == 200, r.text
            assert r.json()["output"][0]["data"] == "echo: byok"
            none = await c.post("/api/v1/generate", json=prompt("no key"))
            assert none.status_code == 400 and "X-Provider-Api-Key" in none.json()["detail"]
        assert [q.headers["x-goog-api-key"] for q in fake.requests] == [USER_KEY]


async def test_ollama_request_key_is_a_bearer_header(tmp_path: Path) -> None:
    with running(FakeOllama) as fake:
        cfg = remote_config(tmp_path, {"ol": ("ollama_binding", {
            "base_url": fake.url, "default_model": "llama-fake", "allow_request_credentials": True})})
        async with api_client(cfg) as c:
            r = await c.post("/api/v1/generate", json=prompt("byok", stream=True), headers={"X-Provider-Api-Key": USER_KEY})
        assert sse_events(r.text)[-1]["content"][0]["data"] == "echo: byok"
        assert fake.requests[-1].headers["authorization"] == f"Bearer {USER_KEY}"
