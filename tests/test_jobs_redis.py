"""Durable jobs shared through a real Redis: two real server replicas (they do not run jobs: jobs.run_locally
false) and real `lollms-server worker` processes.

A job created on replica A is followed through replica B, the follower disconnects and resumes with
Last-Event-ID on the other replica (exactly the remaining events), a job running on the worker is cancelled
from A (its cluster-wide compute slot comes back), and a worker killed with kill -9 mid-job has its job
taken over by another worker and restarted from the beginning (with a note in the event stream).
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import httpx
import pytest

from helpers import API_KEY, ServerProcess, free_port, run_cli, write_config
from jobs_support import WorkerProcess, ask, read_events, wait_state, words
from redis_fixture import RedisServer, redis_server_fixture  # noqa: F401  (the `redis_server` fixture)

OTHER_KEY = "other-key-9876543210"
CLAIM_IDLE = 2
HEADERS = {"X-API-Key": API_KEY}


def _config(d: Path, redis_url: str | None, gpu_strategy: str = "semaphore", extensions: dict[str, Any] | None = None,
            prefix: str = "lollms") -> Path:
    write_config(
        d,
        {"quick": ("dummy_binding", {"stream_chunk_delay": 0.02}),
         "slow": ("dummy_binding", {"stream_chunk_delay": 0.25, "requires_gpu": True})},
        api_keys=[API_KEY, OTHER_KEY],
        main={"resource_manager": {"backend": "redis", "redis_url": redis_url, "gpu_limit": 1, "lease_seconds": 2,
                                   "gpu_strategy": gpu_strategy, "redis_prefix": prefix},
              "extensions": extensions or {},
              "jobs": {"run_locally": False, "claim_idle_s": CLAIM_IDLE, "max_attempts": 2, "stop_grace_s": 0,
                       "concurrency": 2},
              "server": {"keepalive_interval": 1.0}},
    )
    return d


@dataclass
class Cluster:
    config_dir: Path
    a: ServerProcess
    b: ServerProcess
    worker: WorkerProcess
    extra: list[WorkerProcess] = field(default_factory=list)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[Cluster]:
    d = _config(tmp_path_factory.mktemp("jobs-redis") / "cfg", redis_server.url)
    a, b = ServerProcess(d), ServerProcess(d)
    worker = WorkerProcess(d)
    c = Cluster(d, a, b, worker)
    try:
        a.start()
        b.start()
        worker.start()
        yield c
    finally:
        for w in [worker, *c.extra]:
            w.stop()
        a.stop()
        b.stop()


@pytest.fixture()
async def clients(cluster: Cluster) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    async with httpx.AsyncClient(base_url=cluster.a.base_url, headers=HEADERS, timeout=60) as a, \
            httpx.AsyncClient(base_url=cluster.b.base_url, headers=HEADERS, timeout=60) as b:
        yield a, b


async def _start(c: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    r = await c.post("/api/v1/jobs", json=body)
    assert r.status_code == 202, r.text
    created: dict[str, Any] = r.json()
    return created


async def test_a_job_created_on_a_streams_through_b_and_resumes_on_a(
        clients: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
    a, b = clients
    text = words(12)
    created = await _start(a, ask(text, "slow"))
    url = created["events_url"]
    first, _ = await read_events(b, url, stop_after=4)  # through B, then the client goes away
    assert [e.type for e in first] == ["chunk"] * 4
    rest, pings = await read_events(a, url, headers={"Last-Event-ID": first[-1].id})  # resumed on A
    events = first + rest
    assert [e.type for e in events] == ["chunk"] * 12 + ["final"], [e.type for e in events]
    assert "".join(e.data["content"] for e in events[:-1]) == text  # no duplicate, no gap
    ids = [e.id for e in events]
    assert len(set(ids)) == len(ids) and all("-" in i for i in ids)  # Redis stream ids
    replay, _ = await read_events(b, url)  # the finished job replays from the start on any replica
    assert [(e.id, e.data) for e in replay] == [(e.id, e.data) for e in events]
    tail, _ = await read_events(b, url, params={"last_event_id": ids[9]})
    assert [e.id for e in tail] == ids[10:]
    for c in (a, b):
        job = (await c.get(f"/api/v1/jobs/{created['job_id']}")).json()
        assert job["state"] == "succeeded" and job["attempts"] == 1, job
        assert job["result"]["output"][0]["data"] == text
        assert job["result"]["output"] == events[-1].data["content"]
    listed = (await b.get("/api/v1/jobs")).json()["jobs"]
    assert created["job_id"] in [j["job_id"] for j in listed]


async def test_cancel_from_a_stops_the_generation_on_the_worker(
        clients: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
    a, b = clients
    created = await _start(b, ask(words(300), "slow"))  # 300 x 0.25 s: over a minute unless cancelled
    await read_events(a, created["events_url"], stop_after=2)
    assert (await a.get("/api/v1/resources")).json()["active"] == 1  # the worker holds the cluster's slot
    started = time.monotonic()
    r = await a.delete(f"/api/v1/jobs/{created['job_id']}")
    took = time.monotonic() - started
    assert r.status_code == 200 and r.json()["state"] == "cancelled", r.text
    assert took < 1.6, took
    events, _ = await read_events(b, created["events_url"])
    assert [e.type for e in events[-2:]] == ["error", "final"]
    assert sum(e.type == "chunk" for e in events) < 20
    await asyncio.sleep(0.8)  # the binding notices between two chunks (0.25 s), then the slot is released
    resources = (await b.get("/api/v1/resources")).json()
    assert (resources["active"], resources["waiting"]) == (0, 0), resources
    after = (await b.get(f"/api/v1/jobs/{created['job_id']}")).json()
    assert after["state"] == "cancelled" and after["error"]["type"] == "cancelled"
    quick = await _start(a, ask("still working", "quick"))  # the worker took the next job at once
    assert (await wait_state(b, f"/api/v1/jobs/{quick['job_id']}"))["state"] == "succeeded"


async def test_jobs_are_private_and_bad_bodies_are_refused_on_every_replica(
        cluster: Cluster, clients: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
    a, b = clients
    created = await _start(a, ask("mine", "quick"))
    await wait_state(a, f"/api/v1/jobs/{created['job_id']}")
    async with httpx.AsyncClient(base_url=cluster.b.base_url, headers={"X-API-Key": OTHER_KEY}, timeout=30) as other:
        for method, url in (("GET", f"/api/v1/jobs/{created['job_id']}"), ("DELETE", f"/api/v1/jobs/{created['job_id']}"),
                            ("GET", created["events_url"])):
            assert (await other.request(method, url)).status_code == 404, (method, url)
    unknown = await b.post("/api/v1/jobs", json=ask("hi", "no_such_instance"))
    assert unknown.status_code == 404, unknown.text
    assert (await b.post("/api/v1/jobs", json={"input_data": []})).status_code == 400
    byok = await a.post("/api/v1/jobs", json=ask("hi", "quick"), headers={"X-Provider-Api-Key": "sk-secret-provider-key"})
    assert byok.status_code == 400 and "Redis" in byok.json()["detail"], byok.text
    assert "sk-secret-provider-key" not in byok.text
    bad_id = await b.get(created["events_url"], headers={"Last-Event-ID": "12"})
    assert bad_id.status_code == 400


async def _runner_of(job_id: str, workers: list[WorkerProcess], timeout: float = 20) -> WorkerProcess:
    """The worker whose log says it started ``job_id``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [w for w in workers if f"job {job_id} started" in w.log()]
        if found:
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no worker started job {job_id}")


def _live(cluster: Cluster) -> list[WorkerProcess]:
    return [w for w in [cluster.worker, *cluster.extra] if w.proc is not None and w.proc.poll() is None]


async def test_a_killed_worker_s_job_is_taken_over_and_restarted_by_another(
        cluster: Cluster, clients: tuple[httpx.AsyncClient, httpx.AsyncClient], redis_server: RedisServer) -> None:
    a, b = clients
    second = WorkerProcess(cluster.config_dir, name="worker2")
    cluster.extra.append(second)
    second.start()
    text = words(16)
    created = await _start(a, ask(text, "slow"))  # 16 x 0.25 s = 4 s
    job_url = f"/api/v1/jobs/{created['job_id']}"
    head, _ = await read_events(b, created["events_url"], stop_after=2)
    victim = await _runner_of(created["job_id"], _live(cluster))
    (other,) = [w for w in _live(cluster) if w is not victim]
    assert victim.proc is not None
    victim.proc.kill()  # kill -9 mid-job: no clean-up, its claim on the job stays in Redis
    killed = time.monotonic()
    assert (await a.get(job_url)).json()["state"] == "running"
    events, _ = await read_events(a, created["events_url"], headers={"Last-Event-ID": head[-1].id}, timeout=60)
    job = (await b.get(job_url)).json()
    took = time.monotonic() - killed
    assert job["state"] == "succeeded" and job["attempts"] == 2, job  # retried by another consumer
    assert job["result"]["output"][0]["data"] == text  # restarted from scratch: the whole answer, once
    notes = [e for e in events if e.type == "info" and e.data["metadata"].get("job_restarted")]
    assert len(notes) == 1 and notes[0].data["metadata"]["attempt"] == 2, [e.data for e in events]
    after_note = events[events.index(notes[0]) + 1:]
    assert "".join(e.data["content"] for e in after_note if e.type == "chunk") == text
    assert events[-1].type == "final" and sum(e.type == "final" for e in events) == 1
    assert took < CLAIM_IDLE + 4 + 6, took  # claim idle (2 s) + the 4 s rerun, not stranded
    assert "takes it over" in other.log()
    consumers = [_name(c["name"]) for c in redis_server.client().xinfo_consumers("lollms:jobs:queue", "runners")]
    assert consumers and not any(f"-{victim.proc.pid}-" in n for n in consumers), consumers  # the dead one is forgotten


def _name(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def test_sigterm_puts_a_running_job_back_in_the_queue_for_another_worker(
        cluster: Cluster, clients: tuple[httpx.AsyncClient, httpx.AsyncClient], redis_server: RedisServer) -> None:
    a, b = clients
    if len(_live(cluster)) < 2:
        third = WorkerProcess(cluster.config_dir, name="worker3")
        cluster.extra.append(third)
        third.start()
    text = words(12)
    created = await _start(b, ask(text, "slow"))
    job_url = f"/api/v1/jobs/{created['job_id']}"
    await read_events(a, created["events_url"], stop_after=2)
    running_worker = await _runner_of(created["job_id"], _live(cluster))
    assert running_worker.stop() == 0  # SIGTERM (exit 0 within 20 s, else killed); stop_grace_s 0: requeued now
    job = await wait_state(a, job_url, timeout=60)
    events, _ = await read_events(b, created["events_url"])
    assert job["state"] == "succeeded" and job["attempts"] == 2, job
    assert job["result"]["output"][0]["data"] == text
    notes = [e for e in events if e.type == "info" and e.data["metadata"].get("requeued")]
    assert len(notes) == 1 and notes[0].data["metadata"]["job_restarted"] is True, [e.data for e in events]
    assert "stopped" in running_worker.log()
    name = re.search(r"lollms-server worker (\S+): running jobs", running_worker.log())
    assert name is not None
    with redis_server.client() as r:
        consumers = [c["name"].decode() for c in r.xinfo_consumers("lollms:jobs:queue", "runners")]
    assert name.group(1) not in consumers and consumers, consumers  # it left the group; the live ones are there


def test_the_worker_refuses_to_start_without_redis(tmp_path: Path) -> None:
    d = tmp_path / "cfg"
    write_config(d)
    r = run_cli("worker", "--config-dir", str(d), timeout=60)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "resource_manager.backend: redis" in r.stderr


def test_a_worker_stops_cleanly_on_sigterm(tmp_path: Path, redis_server: RedisServer) -> None:
    d = _config(tmp_path / "cfg", redis_server.url)
    worker = WorkerProcess(d).start()
    started = time.monotonic()
    code = worker.stop()
    assert code == 0 and time.monotonic() - started < 10, worker.log()
    assert "stopped" in worker.log()


async def test_unreachable_redis_answers_503_for_jobs_and_keeps_the_password_secret(tmp_path: Path) -> None:
    password = "pw-Jobs-s3cret-5521"
    # no compute slots (gpu_strategy none): the job store itself must say that Redis is gone
    d = _config(tmp_path / "cfg", f"redis://:{password}@127.0.0.1:{free_port()}/0", gpu_strategy="none")
    with ServerProcess(d) as s:
        async with httpx.AsyncClient(base_url=s.base_url, headers=HEADERS, timeout=30) as c:
            created = await c.post("/api/v1/jobs", json=ask("hi", "quick"))
            got = await c.get("/api/v1/jobs/0123456789abcdef0123456789abcdef")
            ready = await c.get("/health/ready")
        log = s.log()
    assert ready.status_code == 503 and "Redis" in ready.text and password not in ready.text, ready.text
    for r in (created, got):
        assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0, r.text
        assert "resource_manager.redis_url" in r.text and password not in r.text
    assert password not in log


COUNTING_FILTER = '''
from pathlib import Path


class Filter:
    name = "inlet_counter"

    def inlet(self, request, ctx):
        with open(Path(__file__).with_name("inlets.log"), "a", encoding="utf-8") as log:
            log.write(ctx.request_id + "\\n")
        if any("refuse me" in str(m.get("content")) for m in request.messages):
            from lollms_server.core.filters import FilterRejected
            raise FilterRejected("the counter refuses this prompt")
        return request
'''


async def test_a_shared_job_runs_the_filters_inlets_once_where_it_runs(tmp_path: Path, redis_server: RedisServer) -> None:
    filters = tmp_path / "filters"
    filters.mkdir()
    (filters / "inlet_counter.py").write_text(COUNTING_FILTER, encoding="utf-8")
    # its own queue: the module's cluster worker (no such filter) must not take these jobs
    d = _config(tmp_path / "cfg", redis_server.url, extensions={"filters_folder": str(filters)}, prefix="inlets")
    (d / "plugin_settings.yaml").write_text("filters:\n  inlet_counter:\n    enabled: true\n", encoding="utf-8")
    log = filters / "inlets.log"
    worker = WorkerProcess(d)
    with ServerProcess(d) as a:
        worker.start()
        try:
            async with httpx.AsyncClient(base_url=a.base_url, headers=HEADERS, timeout=60) as c:
                created = await _start(c, ask(words(3), "quick"))
                job = await wait_state(c, f"/api/v1/jobs/{created['job_id']}")
                refused = await _start(c, ask("please refuse me", "quick"))
                failed = await wait_state(c, f"/api/v1/jobs/{refused['job_id']}")
        finally:
            worker.stop()
    assert job["state"] == "succeeded", job
    assert failed["state"] == "failed" and "the counter refuses this prompt" in str(failed["error"]), failed
    calls = log.read_text(encoding="utf-8").split()
    assert len(calls) == 2 and len(set(calls)) == 2, calls  # once per job (on the worker), not also at creation
