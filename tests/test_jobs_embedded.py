"""Durable jobs without Redis (the default): /api/v1/jobs on one real server process.

Create, poll and read the result (the same JSON /api/v1/generate answers); follow the events, disconnect and
resume with Last-Event-ID (no duplicate, no gap); cancel a running generation (its compute slot comes back);
jobs are private to their API key; a bad body is refused like /api/v1/generate before any job exists; the
queue is bounded.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import httpx
import pytest

from helpers import API_KEY, ServerProcess, write_config
from jobs_support import ask, read_events, wait_state, words

OTHER_KEY = "other-key-9876543210"
MAX_QUEUED = 2
CONCURRENCY = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    d = tmp_path_factory.mktemp("jobs") / "cfg"
    write_config(
        d,
        {"quick": ("dummy_binding", {"stream_chunk_delay": 0.02}),
         "slow": ("dummy_binding", {"stream_chunk_delay": 0.3, "requires_gpu": True}),
         "broken": ("dummy_binding", {"mode": "fail_stream"})},
        api_keys=[API_KEY, OTHER_KEY],
        main={"jobs": {"max_queued": MAX_QUEUED, "concurrency": CONCURRENCY, "stop_grace_s": 0},
              "server": {"keepalive_interval": 0.5}, "resource_manager": {"gpu_limit": 1, "queue_timeout": 1}},
    )
    with ServerProcess(d) as s:
        yield s


@pytest.fixture()
async def client(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, headers={"X-API-Key": API_KEY}, timeout=60) as c:
        yield c


async def _start(c: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    r = await c.post("/api/v1/jobs", json=body)
    assert r.status_code == 202, r.text
    created: dict[str, Any] = r.json()
    return created


async def test_a_job_answers_at_once_and_ends_with_what_generate_answers(client: httpx.AsyncClient) -> None:
    body = ask("the quick brown fox jumps", "quick", parameters={"max_tokens": 4})
    started = time.monotonic()
    created = await _start(client, {**body, "stream": False})
    answered_in = time.monotonic() - started
    assert set(created) == {"job_id", "state", "events_url", "created_at"}, created
    assert created["state"] == "queued" and created["events_url"] == f"/api/v1/jobs/{created['job_id']}/events"
    assert abs(created["created_at"] - time.time()) < 30
    assert answered_in < 0.5, answered_in  # before the generation (5 chunks x 20 ms) ran
    job = await wait_state(client, f"/api/v1/jobs/{created['job_id']}")
    direct = (await client.post("/api/v1/generate", json=body)).json()
    assert job["state"] == "succeeded", job
    assert job["attempts"] == 1 and job["error"] is None
    assert job["created_at"] <= job["started_at"] <= job["finished_at"]
    result = job["result"]
    assert set(result) == set(direct) == {"personality", "request_id", "output", "execution_time"}
    assert [(o["type"], o["data"]) for o in result["output"]] == [(o["type"], o["data"]) for o in direct["output"]]
    assert result["output"][0]["data"] == "the quick brown fox"  # max_tokens applied as for generate
    assert result["output"][0]["metadata"]["finish_reason"] == "length"
    assert set(result["output"][0]["metadata"]) == set(direct["output"][0]["metadata"])
    listed = (await client.get("/api/v1/jobs")).json()["jobs"]
    assert listed[0]["job_id"] == created["job_id"] and listed[0]["state"] == "succeeded"


async def test_events_replay_and_resume_after_a_disconnect_without_duplicate_or_gap(client: httpx.AsyncClient) -> None:
    text = words(12)
    created = await _start(client, ask(text, "slow"))
    url = created["events_url"]
    first, _ = await read_events(client, url, stop_after=3)  # then the client goes away mid-answer
    assert [e.type for e in first] == ["chunk"] * 3
    rest, pings = await read_events(client, url, headers={"Last-Event-ID": first[-1].id})
    events = first + rest
    assert [e.type for e in events] == ["chunk"] * 12 + ["final"], [e.type for e in events]
    assert "".join(e.data["content"] for e in events[:-1]) == text
    assert len({e.id for e in events}) == len(events)
    full, _ = await read_events(client, url)  # the finished job replays from the start and closes
    assert [(e.id, e.data) for e in full] == [(e.id, e.data) for e in events]
    after = await read_events(client, url, params={"last_event_id": full[5].id})
    assert [e.id for e in after[0]] == [e.id for e in full[6:]]
    assert pings >= 1  # keep-alive comments while the stream waited for slow chunks (0.3 s apart, ping 0.5 s)
    job = (await client.get(f"/api/v1/jobs/{created['job_id']}")).json()
    assert job["result"]["output"] == events[-1].data["content"]


async def test_delete_stops_a_running_generation_and_frees_its_slot(client: httpx.AsyncClient) -> None:
    created = await _start(client, ask(words(200), "slow"))  # 200 chunks x 0.3 s: a minute unless cancelled
    url = created["events_url"]
    head, _ = await read_events(client, url, stop_after=2)
    assert (await client.get("/api/v1/resources")).json()["active"] == 1
    started = time.monotonic()
    r = await client.delete(f"/api/v1/jobs/{created['job_id']}")
    took = time.monotonic() - started
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["state"] == "cancelled" and job["result"] is None and job["error"]["type"] == "cancelled", job
    assert took < 1.6, took
    events, _ = await read_events(client, url)
    assert [e.type for e in events[-2:]] == ["error", "final"], [e.type for e in events]
    assert sum(e.type == "chunk" for e in events) < 20  # the generation stopped, it did not run on
    final = events[-1].data["content"]
    assert final[-1]["type"] == "error" and final[0]["data"].startswith(head[0].data["content"])
    await asyncio.sleep(1.0)  # the binding checks its cancel flag between chunks (0.3 s)
    resources = (await client.get("/api/v1/resources")).json()
    assert resources["active"] == 0, resources
    again = await client.delete(f"/api/v1/jobs/{created['job_id']}")  # an ended job keeps its state
    assert again.status_code == 200 and again.json()["state"] == "cancelled"
    done = await _start(client, ask("fast", "quick"))
    await wait_state(client, f"/api/v1/jobs/{done['job_id']}")
    ended = (await client.delete(f"/api/v1/jobs/{done['job_id']}")).json()
    assert ended["state"] == "succeeded" and ended["result"]["output"][0]["data"] == "fast"


async def test_a_failing_generation_ends_failed_with_an_error_then_a_final(client: httpx.AsyncClient) -> None:
    created = await _start(client, ask(words(6), "broken"))
    job = await wait_state(client, f"/api/v1/jobs/{created['job_id']}")
    events, _ = await read_events(client, created["events_url"])
    assert job["state"] == "failed" and job["result"] is None, job
    assert "fail" in job["error"]["message"] and job["error"]["status_code"] == 500, job
    assert [e.type for e in events][-2:] == ["error", "final"] and sum(e.type == "final" for e in events) == 1
    assert events[-1].data["content"][-1]["type"] == "error"


async def test_jobs_are_private_to_their_api_key(client: httpx.AsyncClient, server: ServerProcess) -> None:
    created = await _start(client, ask("mine", "quick"))
    job_url = f"/api/v1/jobs/{created['job_id']}"
    await wait_state(client, job_url)
    async with httpx.AsyncClient(base_url=server.base_url, headers={"X-API-Key": OTHER_KEY}, timeout=30) as other:
        for method, url in (("GET", job_url), ("DELETE", job_url), ("GET", created["events_url"])):
            r = await other.request(method, url)
            assert r.status_code == 404, (method, url, r.status_code, r.text)
            assert "not found" in r.json()["detail"]
        assert created["job_id"] not in [j["job_id"] for j in (await other.get("/api/v1/jobs")).json()["jobs"]]
    for url in ("/api/v1/jobs/0123456789abcdef0123456789abcdef", "/api/v1/jobs/..%2F..%2Fetc", "/api/v1/jobs/x/events"):
        assert (await client.get(url)).status_code == 404, url
    assert (await client.get(job_url)).json()["state"] == "succeeded"  # still there for its owner
    bad = await client.get(created["events_url"], headers={"Last-Event-ID": "not-an-id"})
    assert bad.status_code == 400 and "Last-Event-ID" in bad.json()["detail"]
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as anonymous:
        assert (await anonymous.get(job_url)).status_code == 403


async def test_a_bad_body_is_refused_like_generate_before_any_job_exists(client: httpx.AsyncClient) -> None:
    before = len((await client.get("/api/v1/jobs")).json()["jobs"])
    for body in (
        {"input_data": []},  # no prompt: 400
        ask("hi", "no_such_instance"),  # unknown binding: 404
        ask("hi", "quick", generation_type="nonsense"),  # 400
        {"input_data": "not a list"},  # schema: 422
        ask("hi", "quick", parameters={"max_tokens": 10**9}),  # does not fit the model's context: 400
    ):
        job = await client.post("/api/v1/jobs", json=body)
        direct = await client.post("/api/v1/generate", json=body)
        assert job.status_code == direct.status_code and 400 <= job.status_code < 500, (body, job.text, direct.text)
        assert job.json()["detail"] == direct.json()["detail"]
    broken_json = await client.post("/api/v1/jobs", content=b"{not json", headers={"Content-Type": "application/json"})
    assert broken_json.status_code == 422
    assert len((await client.get("/api/v1/jobs")).json()["jobs"]) == before


async def test_the_queue_is_bounded_and_a_queued_job_can_be_cancelled(client: httpx.AsyncClient) -> None:
    running = [await _start(client, ask(words(200), "slow")) for _ in range(CONCURRENCY)]
    for job in running:
        await wait_state(client, f"/api/v1/jobs/{job['job_id']}", ("running",))
    queued = [await _start(client, ask(f"queued {i}", "quick")) for i in range(MAX_QUEUED)]
    full = await client.post("/api/v1/jobs", json=ask("one too many", "quick"))
    assert full.status_code == 503 and int(full.headers["Retry-After"]) > 0, full.text
    assert "jobs.max_queued" in full.json()["detail"]
    waiting = (await client.delete(f"/api/v1/jobs/{queued[0]['job_id']}")).json()
    assert waiting["state"] == "cancelled" and waiting["started_at"] is None and waiting["attempts"] == 0
    events, _ = await read_events(client, queued[0]["events_url"])
    assert [e.type for e in events] == ["error", "final"]
    for job in running:
        assert (await client.delete(f"/api/v1/jobs/{job['job_id']}")).json()["state"] == "cancelled"
    last = await wait_state(client, f"/api/v1/jobs/{queued[1]['job_id']}")
    assert last["state"] == "succeeded" and last["result"]["output"][0]["data"] == "queued 1"
    never_ran = (await client.get(f"/api/v1/jobs/{queued[0]['job_id']}")).json()
    assert never_ran["state"] == "cancelled" and never_ran["attempts"] == 0


async def test_a_running_job_survives_its_client_going_away(client: httpx.AsyncClient, server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, headers={"X-API-Key": API_KEY}, timeout=30) as browser:
        created = await _start(browser, ask(words(5), "slow"))
        await read_events(browser, created["events_url"], stop_after=1)
    # the "browser" is closed (a page refresh): the job runs on and a new client reads it whole
    job = await wait_state(client, f"/api/v1/jobs/{created['job_id']}")
    events, _ = await read_events(client, created["events_url"])
    assert job["state"] == "succeeded" and job["result"]["output"][0]["data"] == words(5)
    assert [e.type for e in events] == ["chunk"] * 5 + ["final"]


async def test_jobs_wait_for_a_compute_slot_longer_than_queue_timeout(client: httpx.AsyncClient) -> None:
    first, second = [await _start(client, ask(words(6), "slow")) for _ in range(2)]  # 1.8 s each, one slot
    await wait_state(client, f"/api/v1/jobs/{first['job_id']}", ("running",))
    await asyncio.sleep(0.3)
    direct = await client.post("/api/v1/generate", json=ask("impatient", "slow"))
    assert direct.status_code == 408, direct.text  # a request waits resource_manager.queue_timeout (1 s) at most
    for job in (first, second):
        done = await wait_state(client, f"/api/v1/jobs/{job['job_id']}")
        assert done["state"] == "succeeded", done  # the second job waited ~1.8 s for the slot, and ran
    ends = sorted([(await client.get(f"/api/v1/jobs/{j['job_id']}")).json()["finished_at"] for j in (first, second)])
    assert ends[1] - ends[0] >= 1.2, ends  # one after the other: the slot limit held


def test_docs_list_the_jobs_routes(server: ServerProcess) -> None:
    spec = httpx.get(f"{server.base_url}/openapi.json", timeout=10).json()
    assert {"/api/v1/jobs", "/api/v1/jobs/{job_id}", "/api/v1/jobs/{job_id}/events"} <= set(spec["paths"])
    assert "202" in spec["paths"]["/api/v1/jobs"]["post"]["responses"]
    assert set(spec["paths"]["/api/v1/jobs/{job_id}"]) >= {"get", "delete"}


def test_config_refuses_a_bad_jobs_setting(tmp_path: Path) -> None:
    from helpers import run_cli

    d = tmp_path / "cfg"
    path = write_config(d, main={"jobs": {"max_queued": 7}})
    text = path.read_text()
    assert "max_queued: 7" in text
    path.write_text(text.replace("max_queued: 7", "max_queued: 0"))
    r = run_cli("serve", "--config-dir", str(d), "--port", "1")
    assert r.returncode == 2 and "jobs.max_queued" in r.stderr, r.stderr
