"""The deployment recipe, end to end: real Redis + two real replicas + a real `lollms-server worker` + a real
HAProxy running `deploy/haproxy.cfg`.

Through the balancer: requests are spread over both replicas (each replica's own /metrics counts what it
served), the cluster's gpu_limit holds under concurrent load, an SSE stream arrives piece by piece (no buffering),
a job runs on the worker (the replicas do not run jobs) and its events resume with Last-Event-ID, and a replica
that is not ready (its Redis user disabled: /health/ready 503) or killed with kill -9 leaves the rotation
while requests keep succeeding.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from haproxy_fixture import HAProxy, haproxy_missing
from helpers import API_KEY, ServerProcess, write_config
from jobs_support import WorkerProcess, read_events, wait_state
from redis_fixture import RedisServer, redis_server_fixture  # noqa: F401  (the `redis_server` fixture)

HEADERS = {"X-API-Key": API_KEY}
GPU_LIMIT = 2
QUICK_DELAY = 0.5
CHUNK_DELAY = 0.25
B_USER, B_PASSWORD = "replica_b", "pw-replica-b-5521"
# the ACL rule deploy/redis.conf.example gives the cluster's user
ACL_RULE = ["~lollms:*", "&lollms:*", "+@all", "-@admin", "-@dangerous", "+info"]


@dataclass
class Cluster:
    a: ServerProcess
    b: ServerProcess
    worker: WorkerProcess
    lb: HAProxy
    redis: RedisServer


def _config(d: Path) -> Path:
    write_config(
        d,
        {"fast": ("dummy_binding", {"requires_gpu": True}),
         "quick": ("dummy_binding", {"requires_gpu": True, "delay": QUICK_DELAY}),
         "streamer": ("dummy_binding", {"requires_gpu": True, "stream_chunk_delay": CHUNK_DELAY})},
        main={"resource_manager": {"backend": "redis", "gpu_strategy": "semaphore", "gpu_limit": GPU_LIMIT,
                                   "queue_timeout": 60, "max_queue": 64, "lease_seconds": 2},
              "security": {"keyless_loopback_surfaces": ["ollama"]},
              "jobs": {"run_locally": False}},  # the recipe's split: replicas serve, workers run jobs
    )
    return d


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[Cluster]:
    haproxy_missing()
    redis_server.flush()
    with redis_server.client() as r:  # replica B logs in as a user of its own, limited as the recipe says
        r.acl_setuser(B_USER, enabled=True, passwords=[f"+{B_PASSWORD}"], reset=True)
        r.execute_command("ACL", "SETUSER", B_USER, *ACL_RULE)
    d = _config(tmp_path_factory.mktemp("deploy") / "cfg")
    b_url = f"redis://{B_USER}:{B_PASSWORD}@127.0.0.1:{redis_server.port}/0"
    a = ServerProcess(d, env={"LOLLMS_REDIS_URL": redis_server.url})
    b = ServerProcess(d, env={"LOLLMS_REDIS_URL": b_url})
    worker = WorkerProcess(d, env={"LOLLMS_REDIS_URL": redis_server.url})
    lb = HAProxy([f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"], d / "haproxy.log")
    try:
        a.start()
        b.start()
        worker.start()
        lb.start()
        yield Cluster(a, b, worker, lb, redis_server)
    finally:
        lb.stop()
        worker.stop()
        a.stop()
        b.stop()


def _ask(binding: str, text: str, stream: bool = False) -> dict[str, Any]:
    return {"input_data": [{"type": "text", "role": "user_prompt", "data": text}], "binding_name": binding,
            "stream": stream}


_SAMPLE = re.compile(r'^lollms_generations_total\{([^}]*)\} ([0-9.e+]+)$', re.M)


def served(replica: ServerProcess, binding: str) -> int:
    """Generations ``replica`` itself finished with ``binding`` (its own Prometheus counter)."""
    text = httpx.get(f"{replica.base_url}/metrics", headers=HEADERS, timeout=10).text
    return int(sum(float(v) for labels, v in _SAMPLE.findall(text)
                   if f'binding="{binding}"' in labels and 'status="ok"' in labels))


async def test_requests_are_spread_over_both_replicas(cluster: Cluster) -> None:
    before = (served(cluster.a, "fast"), served(cluster.b, "fast"))
    async with httpx.AsyncClient(base_url=cluster.lb.base_url, headers=HEADERS, timeout=30) as c:
        async def worker(w: int) -> list[int]:
            return [(await c.post("/api/v1/generate", json=_ask("fast", f"w{w} r{i}"))).status_code for i in range(5)]

        codes = [code for batch in await asyncio.gather(*(worker(w) for w in range(4))) for code in batch]
    on_a, on_b = served(cluster.a, "fast") - before[0], served(cluster.b, "fast") - before[1]
    assert codes == [200] * 20, codes
    assert on_a + on_b == 20 and on_a >= 4 and on_b >= 4, (on_a, on_b)


def test_a_relayed_request_is_never_local(cluster: Cluster) -> None:
    """keyless_loopback_surfaces opens a surface to this machine only: through the proxy a key is needed."""
    direct = httpx.get(f"{cluster.a.base_url}/api/tags", timeout=10)
    relayed = httpx.get(f"{cluster.lb.base_url}/api/tags", timeout=10)
    assert direct.status_code == 200, direct.text
    assert relayed.status_code in (401, 403), relayed.text


async def test_gpu_limit_holds_through_the_balancer(cluster: Cluster) -> None:
    before = (served(cluster.a, "quick"), served(cluster.b, "quick"))
    samples: list[int] = []
    done = asyncio.Event()
    async with httpx.AsyncClient(headers=HEADERS, timeout=60) as c:
        async def watch() -> None:
            while not done.is_set():
                for replica in (cluster.a, cluster.b):
                    state = (await c.get(f"{replica.base_url}/api/v1/resources")).json()
                    samples.append(state["active"])
                await asyncio.sleep(0.05)

        watcher = asyncio.create_task(watch())
        started = time.monotonic()
        answers = await asyncio.gather(*(c.post(f"{cluster.lb.base_url}/api/v1/generate", json=_ask("quick", f"q{i}"))
                                         for i in range(8)))
        elapsed = time.monotonic() - started
        done.set()
        await watcher
    on_a, on_b = served(cluster.a, "quick") - before[0], served(cluster.b, "quick") - before[1]
    assert [r.status_code for r in answers] == [200] * 8, [r.text for r in answers]
    assert on_a > 0 and on_b > 0 and on_a + on_b == 8, (on_a, on_b)
    assert max(samples) == GPU_LIMIT, samples  # the cluster's limit is reached and never passed
    # 8 generations of 0.5 s, 2 at a time in the whole cluster: 4 rounds (2 replicas x 2 slots each would be 2)
    assert elapsed >= 8 / GPU_LIMIT * QUICK_DELAY - 0.1, elapsed


def test_a_stream_arrives_piece_by_piece_through_the_balancer(cluster: Cluster) -> None:
    words = "one two three four five six seven eight"
    arrivals: list[float] = []
    kinds: list[str] = []
    started = time.monotonic()
    with httpx.stream("POST", f"{cluster.lb.base_url}/api/v1/generate", json=_ask("streamer", words, stream=True),
                      headers=HEADERS, timeout=30) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream"), r.headers
        for line in r.iter_lines():
            if line.startswith("data: "):
                event = httpx.Response(200, content=line[6:]).json()
                kinds.append(event["type"])
                if event["type"] == "chunk":
                    arrivals.append(time.monotonic() - started)
    assert kinds[-1] == "final" and len(arrivals) >= 6, kinds
    # the words are CHUNK_DELAY apart at the replica: a buffering proxy would deliver them all at the end
    assert arrivals[-1] - arrivals[0] >= (len(arrivals) - 2) * CHUNK_DELAY, arrivals
    assert arrivals[0] < arrivals[-1] / 2, arrivals


async def test_a_job_runs_on_the_worker_and_resumes_through_the_balancer(cluster: Cluster) -> None:
    text = "one two three four five six seven eight"
    async with httpx.AsyncClient(base_url=cluster.lb.base_url, headers=HEADERS, timeout=60) as c:
        r = await c.post("/api/v1/jobs", json=_ask("streamer", text))
        assert r.status_code == 202, r.text
        job = r.json()
        first, _ = await read_events(c, job["events_url"], stop_after=3)  # the browser goes away...
        rest, _ = await read_events(c, job["events_url"], headers={"Last-Event-ID": first[-1].id})  # ...and is back
        final = await wait_state(c, f"/api/v1/jobs/{job['job_id']}")
    events = first + rest
    assert len(first) == 3 and [e.type for e in events] == ["chunk"] * (len(events) - 1) + ["final"], events
    assert "".join(e.data["content"] for e in events[:-1]) == text  # no gap, no duplicate across the reconnect
    assert final["state"] == "succeeded" and final["attempts"] == 1, final  # only the worker runs jobs here


async def test_a_drained_replica_finishes_its_stream_and_takes_no_new_request(cluster: Cluster) -> None:
    """The rolling-restart step of the README: drain a replica on the admin socket, its open stream ends normally."""
    lb = cluster.lb

    async def drain(server: str, state: str = "drain") -> None:
        await asyncio.to_thread(lb.admin, f"set server lollms_replicas/{server} state {state}")
        await asyncio.to_thread(lb.wait_state, server, "DRAIN" if state == "drain" else "UP", 10)

    await drain("replica1")  # so the stream below goes to replica2
    text = "one two three four five six seven eight"
    kinds: list[str] = []
    first = asyncio.Event()
    async with httpx.AsyncClient(base_url=lb.base_url, headers=HEADERS, timeout=60) as c:
        async def follow() -> str:
            parts = []
            async with c.stream("POST", "/api/v1/generate", json=_ask("streamer", text, stream=True)) as r:
                async for line in r.aiter_lines():
                    if line.startswith("data: "):
                        event = json.loads(line[6:])
                        kinds.append(event["type"])
                        if event["type"] == "chunk":
                            parts.append(event["content"])
                            first.set()
            return "".join(parts)

        streaming = asyncio.create_task(follow())
        await asyncio.wait_for(first.wait(), 10)
        await drain("replica1", "ready")
        await drain("replica2")  # mid-stream: replica2 takes nothing new
        before = (served(cluster.a, "fast"), served(cluster.b, "fast"))
        codes = [(await c.post("/api/v1/generate", json=_ask("fast", f"d{i}"))).status_code for i in range(6)]
        after = (served(cluster.a, "fast"), served(cluster.b, "fast"))
        streamed = await streaming
    await drain("replica2", "ready")
    assert streamed == text and kinds[-1] == "final" and "error" not in kinds, kinds
    assert codes == [200] * 6 and (after[0] - before[0], after[1] - before[1]) == (6, 0), (before, after)


def _through_lb(cluster: Cluster, n: int) -> list[int]:
    with httpx.Client(base_url=cluster.lb.base_url, headers=HEADERS, timeout=30) as c:
        return [c.post("/api/v1/generate", json=_ask("fast", f"r{i}")).status_code for i in range(n)]


def test_an_unready_replica_leaves_the_rotation(cluster: Cluster) -> None:
    with cluster.redis.client() as r:  # B can no longer reach its Redis: it is alive but not ready
        r.execute_command("ACL", "SETUSER", B_USER, "off")
        r.execute_command("CLIENT", "KILL", "USER", B_USER)
    try:
        ready = httpx.get(f"{cluster.b.base_url}/health/ready", timeout=10)
        assert ready.status_code == 503 and "Redis" in ready.text, ready.text
        assert httpx.get(f"{cluster.b.base_url}/health", timeout=10).status_code == 200  # liveness unchanged
        cluster.lb.wait_state("replica2", "DOWN", timeout=10)
        before = (served(cluster.a, "fast"), served(cluster.b, "fast"))
        codes = _through_lb(cluster, 10)
        after = (served(cluster.a, "fast"), served(cluster.b, "fast"))
    finally:
        with cluster.redis.client() as r:
            r.execute_command("ACL", "SETUSER", B_USER, "on")
    assert codes == [200] * 10, codes
    assert (after[0] - before[0], after[1] - before[1]) == (10, 0), (before, after)
    cluster.lb.wait_state("replica2", "UP", timeout=10)  # ready again: back in the rotation


def test_a_killed_replica_costs_no_request(cluster: Cluster) -> None:
    assert cluster.lb.server_states() == {"replica1": "UP", "replica2": "UP"}
    assert cluster.b.proc is not None
    cluster.b.proc.kill()  # kill -9
    cluster.b.proc.wait()
    codes = _through_lb(cluster, 10)  # before the checks notice: a refused connection is sent to replica1
    cluster.lb.wait_state("replica2", "DOWN", timeout=10)
    codes += _through_lb(cluster, 5)
    assert codes == [200] * 15, codes
