"""Compute slots and queue shared by replicas through a real Redis (resource_manager.backend: redis).

Two real server processes share one real `redis-server`: the slot limit and the queue bound hold across both,
a replica killed with kill -9 gives its slot (and its waiters' places) back within the lease time, and an
unreachable Redis is a clear 503, never a 500 and never a silent fall back to per-process slots.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest

from helpers import API_KEY, ServerProcess, free_port, write_config
from redis_fixture import RedisServer, redis_server_fixture  # noqa: F401  (the `redis_server` fixture)

LEASE = 2
HEADERS = {"X-API-Key": API_KEY}


def _config(tmp_path: Path, *, max_queue: int = 8, queue_timeout: int = 30, slow: float = 30.0,
            quick: float = 1.0, redis_url: str | None = None) -> Path:
    d = tmp_path / "cfg"
    write_config(
        d,
        {"quick": ("dummy_binding", {"requires_gpu": True, "delay": quick}),
         "slow": ("dummy_binding", {"requires_gpu": True, "delay": slow})},
        main={"resource_manager": {"backend": "redis", "gpu_strategy": "semaphore", "gpu_limit": 1,
                                   "queue_timeout": queue_timeout, "max_queue": max_queue, "lease_seconds": LEASE, "redis_url": redis_url}},
    )
    return d


def _replicas(config_dir: Path, url: str | None, n: int = 2) -> list[ServerProcess]:
    """``n`` server processes; ``url`` goes in LOLLMS_REDIS_URL (None: the config file's redis_url is used)."""
    procs = [ServerProcess(config_dir, env={"LOLLMS_REDIS_URL": url} if url else None) for _ in range(n)]
    for p in procs:
        if not url:
            p.env.pop("LOLLMS_REDIS_URL", None)
    started: list[ServerProcess] = []
    try:
        for p in procs:
            started.append(p.start())
    except Exception:
        for p in started:
            p.stop()
        raise
    return procs


def _ask(binding: str, text: str) -> dict[str, Any]:
    return {"input_data": [{"type": "text", "role": "user_prompt", "data": text}], "binding_name": binding}


async def _state(c: httpx.AsyncClient, base: str) -> dict[str, Any]:
    r = await c.get(f"{base}/api/v1/resources")
    assert r.status_code == 200, r.text
    state: dict[str, Any] = r.json()
    return state


async def _wait_for(c: httpx.AsyncClient, base: str, active: int, waiting: int, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state = await _state(c, base)
        if (state["active"], state["waiting"]) == (active, waiting) or time.monotonic() > deadline:
            return state
        await asyncio.sleep(0.05)


async def test_two_replicas_never_run_two_generations_at_once(tmp_path: Path, redis_server: RedisServer) -> None:
    redis_server.flush()
    a, b = _replicas(_config(tmp_path, quick=1.0), redis_server.url)
    try:
        async with httpx.AsyncClient(headers=HEADERS, timeout=60) as c:
            samples: list[tuple[int, int]] = []
            done = asyncio.Event()

            async def watch() -> None:
                while not done.is_set():
                    for base in (a.base_url, b.base_url):
                        s = await _state(c, base)
                        assert s["backend"] == "redis" and s["limit"] == 1, s
                        samples.append((s["active"], s["waiting"]))
                    await asyncio.sleep(0.05)

            watcher = asyncio.create_task(watch())
            started = time.monotonic()
            answers = await asyncio.gather(*(c.post(f"{base}/api/v1/generate", json=_ask("quick", f"q{i}"))
                                             for i, base in enumerate([a.base_url, b.base_url] * 2)))
            elapsed = time.monotonic() - started
            done.set()
            await watcher
            final = [await _state(c, base) for base in (a.base_url, b.base_url)]
    finally:
        a.stop()
        b.stop()
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
    # one slot for the cluster: four 1 s generations run one after the other (two per replica would take ~2 s)
    assert elapsed >= 3.8, elapsed
    assert max(active for active, _ in samples) == 1, samples
    assert max(waiting for _, waiting in samples) >= 2, samples  # both replicas see the other's waiters
    assert all((s["active"], s["waiting"]) == (0, 0) for s in final), final


async def test_killed_replica_gives_back_its_slot_and_its_waiters_leave(tmp_path: Path, redis_server: RedisServer) -> None:
    redis_server.flush()
    a, b = _replicas(_config(tmp_path, quick=0.5, slow=60.0, queue_timeout=30), redis_server.url)
    try:
        async with httpx.AsyncClient(headers=HEADERS, timeout=60) as c:
            holding = asyncio.create_task(c.post(f"{a.base_url}/api/v1/generate", json=_ask("slow", "hold")))
            assert (await _wait_for(c, b.base_url, 1, 0))["active"] == 1
            queued_a = asyncio.create_task(c.post(f"{a.base_url}/api/v1/generate", json=_ask("quick", "a")))
            assert (await _wait_for(c, b.base_url, 1, 1))["waiting"] == 1
            queued_b = asyncio.create_task(c.post(f"{b.base_url}/api/v1/generate", json=_ask("quick", "b")))
            assert (await _wait_for(c, b.base_url, 1, 2))["waiting"] == 2
            assert a.proc is not None
            a.proc.kill()  # kill -9: no clean-up runs on A
            killed = time.monotonic()
            answer = await queued_b
            waited = time.monotonic() - killed
            for t in (holding, queued_a):
                with pytest.raises(httpx.HTTPError):
                    await t
            after = await _state(c, b.base_url)
    finally:
        a.stop()
        b.stop()
    assert answer.status_code == 200, answer.text
    # A's slot lease (2 s) and its waiter's heartbeat expire; B runs (0.5 s) well before the 60 s hold would end
    assert waited < LEASE + 0.5 + 2.5, waited
    assert (after["active"], after["waiting"]) == (0, 0), after


async def test_max_queue_holds_across_replicas(tmp_path: Path, redis_server: RedisServer) -> None:
    redis_server.flush()
    # the URL from the config file this time (the other tests use LOLLMS_REDIS_URL)
    a, b = _replicas(_config(tmp_path, max_queue=1, slow=4.0, quick=0.2, redis_url=redis_server.url), None)
    try:
        async with httpx.AsyncClient(headers=HEADERS, timeout=60) as c:
            holding = asyncio.create_task(c.post(f"{a.base_url}/api/v1/generate", json=_ask("slow", "hold")))
            assert (await _wait_for(c, a.base_url, 1, 0))["active"] == 1
            queued = asyncio.create_task(c.post(f"{b.base_url}/api/v1/generate", json=_ask("quick", "wait")))
            assert (await _wait_for(c, a.base_url, 1, 1))["waiting"] == 1
            started = time.monotonic()
            full = await c.post(f"{a.base_url}/api/v1/generate", json=_ask("quick", "one too many"))
            full_stream = await c.post(f"{a.base_url}/api/v1/generate", json={**_ask("quick", "x"), "stream": True})
            refused_in = time.monotonic() - started
            finished: dict[str, float] = {}

            def stamp(name: str) -> Callable[[object], None]:
                def done(_task: object) -> None:
                    finished.setdefault(name, time.monotonic())
                return done

            holding.add_done_callback(stamp("holding"))
            queued.add_done_callback(stamp("queued"))
            assert (await holding).status_code == 200 and (await queued).status_code == 200
    finally:
        a.stop()
        b.stop()
    assert refused_in < 2.0, refused_in  # at once, not after the 4 s hold
    # the 4 s hold outlives the 2 s lease: it is renewed, so the waiter on B runs only after it
    assert finished["queued"] >= finished["holding"], finished
    for r in (full, full_stream):
        assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0, r.text
        assert "resource_manager.max_queue" in r.json()["detail"], r.text


async def test_unreachable_redis_is_a_clear_503_and_the_password_stays_secret(tmp_path: Path) -> None:
    password = "pw-Redis-s3cret-4417"
    url = f"redis://:{password}@127.0.0.1:{free_port()}/0"  # nothing listens there
    (server,) = _replicas(_config(tmp_path, quick=0.1), url, n=1)
    try:
        async with httpx.AsyncClient(headers=HEADERS, timeout=30) as c:
            health = await c.get(f"{server.base_url}/health")
            ready = await c.get(f"{server.base_url}/health/ready")
            gen = await c.post(f"{server.base_url}/api/v1/generate", json=_ask("quick", "hi"))
            stream = await c.post(f"{server.base_url}/api/v1/generate", json={**_ask("quick", "hi"), "stream": True})
            openai = await c.post(f"{server.base_url}/v1/chat/completions",
                                  json={"model": "quick", "messages": [{"role": "user", "content": "hi"}]})
            resources = await c.get(f"{server.base_url}/api/v1/resources")
    finally:
        server.stop()
    assert health.status_code == 200
    for r in (ready, gen, stream, openai, resources):
        assert r.status_code == 503, (r.request.url, r.status_code, r.text)
        assert "Redis" in r.text and "resource_manager.redis_url" in r.text, r.text
        assert password not in r.text
    assert int(gen.headers["Retry-After"]) > 0
    assert password not in server.log()


def test_redis_backend_without_url_does_not_start(tmp_path: Path) -> None:
    d = tmp_path / "cfg"
    write_config(d, main={"resource_manager": {"backend": "redis"}})
    server = ServerProcess(d)
    server.env.pop("LOLLMS_REDIS_URL", None)
    with pytest.raises(RuntimeError) as failed:
        server.start(timeout=30)
    assert "resource_manager.redis_url" in str(failed.value)


async def test_redis_lost_then_back(tmp_path: Path, redis_server: RedisServer) -> None:
    """Redis stops while the replicas run: 503 (never a 500, never per-process slots); it comes back: served."""
    redis_server.flush()
    (server,) = _replicas(_config(tmp_path, quick=0.1), redis_server.url, n=1)
    try:
        async with httpx.AsyncClient(headers=HEADERS, timeout=30) as c:
            assert (await c.post(f"{server.base_url}/api/v1/generate", json=_ask("quick", "up"))).status_code == 200
            redis_server.stop()
            down = await c.post(f"{server.base_url}/api/v1/generate", json=_ask("quick", "down"))
            ready_down = await c.get(f"{server.base_url}/health/ready")
            redis_server.restart()
            back = await c.post(f"{server.base_url}/api/v1/generate", json=_ask("quick", "back"))
            ready_back = await c.get(f"{server.base_url}/health/ready")
    finally:
        server.stop()
    assert down.status_code == 503 and "Redis" in down.json()["detail"], down.text
    assert ready_down.status_code == 503, ready_down.text
    assert back.status_code == 200 and ready_back.status_code == 200, (back.text, ready_back.text)


def _gauges(base: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{base}/metrics", headers=HEADERS, timeout=10).text
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples
            if s.name.startswith(("lollms_active", "lollms_queue", "lollms_replica_", "lollms_shared_state"))}


async def test_prometheus_gauges_show_the_cluster_and_the_replica(tmp_path: Path, redis_server: RedisServer) -> None:
    redis_server.flush()
    a, b = _replicas(_config(tmp_path, slow=3.0, quick=0.2), redis_server.url)
    try:
        async with httpx.AsyncClient(headers=HEADERS, timeout=60) as c:
            holding = asyncio.create_task(c.post(f"{a.base_url}/api/v1/generate", json=_ask("slow", "hold")))
            assert (await _wait_for(c, b.base_url, 1, 0))["active"] == 1
            queued = asyncio.create_task(c.post(f"{a.base_url}/api/v1/generate", json=_ask("quick", "wait")))
            assert (await _wait_for(c, b.base_url, 1, 1))["waiting"] == 1
            on_b, on_a = _gauges(b.base_url), _gauges(a.base_url)
            assert (await holding).status_code == 200 and (await queued).status_code == 200
        redis_server.stop()
        try:
            down = _gauges(b.base_url)
        finally:
            redis_server.restart()
    finally:
        a.stop()
        b.stop()
    # B holds nothing and has nobody waiting, yet its gauges show the cluster: A's slot and A's waiter
    assert (on_b["lollms_active_slots"], on_b["lollms_queue_depth"], on_b["lollms_shared_state_up"]) == (1, 1, 1), on_b
    assert (on_b["lollms_replica_active_slots"], on_b["lollms_replica_queue_depth"]) == (0, 0), on_b
    assert (on_a["lollms_replica_active_slots"], on_a["lollms_replica_queue_depth"]) == (1, 1), on_a
    # Redis unreachable: no made-up cluster numbers, and a gauge saying so
    assert down["lollms_shared_state_up"] == 0 and "lollms_active_slots" not in down, down


async def test_two_clusters_share_one_redis_with_their_own_prefixes(tmp_path: Path, redis_server: RedisServer) -> None:
    redis_server.flush()
    clusters = []
    for name in ("blue", "green"):
        d = tmp_path / name / "cfg"
        write_config(d, {"quick": ("dummy_binding", {"requires_gpu": True, "delay": 2.0})},
                     main={"resource_manager": {"backend": "redis", "gpu_limit": 1, "lease_seconds": LEASE,
                                                "redis_prefix": f"team-{name}"}})
        clusters.append(d)
    with redis_server.client().pubsub() as hints:
        hints.subscribe("team-blue:slots:released")
        (blue,) = _replicas(clusters[0], redis_server.url, n=1)
        (green,) = _replicas(clusters[1], redis_server.url, n=1)
        try:
            async with httpx.AsyncClient(headers=HEADERS, timeout=60) as c:
                started = time.monotonic()
                running = asyncio.gather(*(c.post(f"{s.base_url}/api/v1/generate", json=_ask("quick", "x"))
                                           for s in (blue, green)))
                for s in (blue, green):  # both hold their slot now: their keys exist
                    assert (await _wait_for(c, s.base_url, 1, 0))["active"] == 1
                with redis_server.client() as r:
                    keys = {k.decode() for k in r.scan_iter(count=1000)}
                answers = await running
                elapsed = time.monotonic() - started
            messages = []
            deadline = time.monotonic() + 5
            while not messages and time.monotonic() < deadline:
                m = hints.get_message(ignore_subscribe_messages=True, timeout=0.5)
                if m:
                    messages.append(m)
        finally:
            blue.stop()
            green.stop()
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
    assert elapsed < 3.8, elapsed  # one slot each: the two clusters ran side by side, not one after the other
    assert keys and all(k.startswith(("team-blue:", "team-green:")) for k in keys), keys  # slots, jobs, usage…
    assert {k.split(":")[0] for k in keys} == {"team-blue", "team-green"}, keys
    assert messages and int(messages[0]["data"]) == 1, messages  # the wake-up hint of blue's release: one slot


def test_a_bad_redis_prefix_does_not_start(tmp_path: Path) -> None:
    d = tmp_path / "cfg"
    write_config(d, main={"resource_manager": {"backend": "redis", "redis_url": "redis://127.0.0.1:1/0",
                                               "redis_prefix": "two words"}})
    with pytest.raises(RuntimeError) as failed:
        ServerProcess(d).start(timeout=30)
    assert "resource_manager.redis_prefix" in str(failed.value)


async def test_waiters_of_both_replicas_are_served_in_arrival_order_without_polling_delays(
        tmp_path: Path, redis_server: RedisServer) -> None:
    """A release wakes the next waiter through the Redis hint: four hand-overs in a row, in arrival order, each
    far quicker than the 1 s fallback poll that would serve them without the hint."""
    redis_server.flush()
    a, b = _replicas(_config(tmp_path, slow=1.5, quick=0.3), redis_server.url)
    finished: dict[str, float] = {}
    try:
        async with httpx.AsyncClient(headers=HEADERS, timeout=60) as c:
            async def ask(base: str, binding: str, name: str) -> int:
                r = await c.post(f"{base}/api/v1/generate", json=_ask(binding, name))
                finished[name] = time.monotonic()
                return r.status_code

            tasks = [asyncio.create_task(ask(a.base_url, "slow", "hold"))]
            assert (await _wait_for(c, b.base_url, 1, 0))["active"] == 1
            for i, base in enumerate([b.base_url, a.base_url, b.base_url, a.base_url]):
                tasks.append(asyncio.create_task(ask(base, "quick", f"w{i}")))
                assert (await _wait_for(c, a.base_url, 1, i + 1))["waiting"] == i + 1
            codes = await asyncio.gather(*tasks)
    finally:
        a.stop()
        b.stop()
    assert codes == [200] * 5, codes
    order = sorted(finished, key=finished.__getitem__)
    assert order == ["hold", "w0", "w1", "w2", "w3"], finished
    handovers = finished["w3"] - finished["hold"]  # four 0.3 s generations after the hold, one at a time
    assert handovers < 4 * 0.3 + 4 * 0.4, handovers
