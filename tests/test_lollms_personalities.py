"""Standard LOLLMS personalities load unchanged: nested category folders, the format's variants, a zoo of
a few hundred (the start-up time of such a zoo is measured by bench/bench_personalities.py)."""

from __future__ import annotations

from pathlib import Path

from helpers import api_client, write_config
from lollms_zoo_fixture import write_lollms_zoo

COUNT = 300


async def test_nested_lollms_zoo_loads(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    write_config(cfg)
    names = write_lollms_zoo(cfg / "personal_personalities", COUNT)
    async with api_client(cfg) as c:
        body = (await c.get("/api/v1/list_personalities")).json()
    listed = body["personalities"]
    assert not body["load_errors"], list(body["load_errors"].items())[:3]
    assert set(names) <= set(listed) and len(set(names)) == COUNT
    # the same folder name in two categories gives two readable, distinct names
    assert listed["coding/persona_0"]["name"] == "coding/persona_0" and "writing/persona_0" in listed
    plain, variant = listed["coding/persona_0"], listed["writing/persona_0"]
    assert plain["category"] == "coding" and plain["version"] == "1.0" and plain["welcome_message"].startswith("Welcome")
    assert variant["category"] == "writing" and "extra_tag" in variant["tags"]
    assert variant["welcome_message"] == "Hello!\nHow can I help?"
    # a dependency of a config-only personality is reported, not blocking
    assert variant["missing_dependencies"] == ["lollms-not-installed-package-1"]
    assert variant["is_scripted"] is False  # an older scripts/processor.py needs the full lollms library


async def test_lollms_fields_drive_generation(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    write_config(cfg)
    write_lollms_zoo(cfg / "personal_personalities", 10)
    async with api_client(cfg) as c:
        # model_n_predicts -> max_tokens (the dummy echo binding stops after that many words)
        r = await c.post("/api/v1/generate", json={
            "personality": "coding/persona_0", "input_data": [{"type": "text", "role": "user_prompt", "data": "a b c d"}]})
        assert r.status_code == 200, r.text
        assert r.json()["output"][0]["data"] == "a b"
        # anti_prompts -> stop sequences; personality_conditioning given as a list of lines -> one system prompt
        r = await c.post("/v1/chat/completions", headers={"Authorization": "Bearer " + c.headers["X-API-Key"]}, json={
            "model": "personality:writing/persona_0", "messages": [{"role": "user", "content": "keep this STOP not this"}]})
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"].strip() == "keep this"
        # the bare folder name is ambiguous here (five categories hold persona_0): a clear 404
        r = await c.post("/api/v1/generate", json={
            "personality": "persona_0", "input_data": [{"type": "text", "role": "user_prompt", "data": "x"}]})
        assert r.status_code == 404 and "ambiguous" in r.json()["detail"] and "coding/persona_0" in r.json()["detail"]
