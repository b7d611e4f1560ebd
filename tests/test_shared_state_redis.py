"""Usage ledger, per-key limits and stored responses shared by replicas through a real Redis.

One real `redis-server` and two real server processes (A and B, `resource_manager.backend: redis`) for the
module: usage served by A shows on B (same totals on both), a per-key limit of N holds across A and B, a
response created on A is continued on B with the official `openai` client (and stays its key's own), and
with Redis gone a limited key gets a clear 503 — never a 500 and never unlimited — while records wait in the
ledger's bounded queue and reach Redis once it is back.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers import ServerProcess, run_cli, write_config
from redis_fixture import RedisServer, redis_server_fixture  # noqa: F401  (the `redis_server` fixture)

from lollms_server.core.usage import RECORD_COLUMNS, UsageQuery, UsageRecord
from lollms_server.core.usage_redis import RedisUsageLedger
from lollms_server.core.usage_sqlite import SqliteUsageLedger

pytestmark = pytest.mark.e2e
ALICE = "alice-key-0123456789"
BOB = "bob-key-9876543210"
ERIN = "erin-key-333333333"
LIMITED = "limited-key-55555555"
DAILY = "daily-key-444444444"
RPM = 3
TOOL = {"type": "function", "name": "lookup", "description": "Look a word up",
        "parameters": {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]}}


class Pair:
    def __init__(self, a: ServerProcess, b: ServerProcess, config_dir: Path) -> None:
        self.a, self.b, self.config_dir = a, b, config_dir


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[Pair]:
    d = tmp_path_factory.mktemp("shared") / "cfg"
    write_config(
        d, {"dummy": ("dummy_binding", {}), "toolbot": ("dummy_binding", {"mode": "tools"})},
        api_keys=[{"key": ALICE, "name": "alice"}, {"key": BOB, "name": "bob"}, {"key": ERIN, "name": "erin"},  # type: ignore[list-item]
                  {"key": LIMITED, "name": "carol", "requests_per_minute": RPM},
                  {"key": DAILY, "name": "dave", "tokens_per_day": 6}],
        # no compute slots (gpu_strategy none): what needs Redis here is the ledger, the limits and the responses
        main={"resource_manager": {"backend": "redis", "redis_url": redis_server.url, "gpu_strategy": "none"}},
    )
    procs = [ServerProcess(d) for _ in range(2)]
    for p in procs:
        p.env.pop("LOLLMS_REDIS_URL", None)  # the URL of the config file, which the CLI reads too
    try:
        for p in procs:
            p.start()
        yield Pair(procs[0], procs[1], d)
    finally:
        for p in procs:
            p.stop()


def ask(text: str) -> dict[str, Any]:
    return {"input_data": [{"type": "text", "role": "user_prompt", "data": text}]}


def generate(base: str, key: str, text: str, request_id: str | None = None) -> httpx.Response:
    headers = {"X-API-Key": key, **({"X-Request-ID": request_id} if request_id else {})}
    return httpx.post(f"{base}/api/v1/generate", headers=headers, json=ask(text), timeout=30)


def usage(base: str, **params: Any) -> dict[str, Any]:
    r = httpx.get(f"{base}/api/v1/usage", headers={"X-API-Key": ALICE}, params=params, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def eventually(probe: Callable[[], Any], timeout: float = 10.0) -> Any:
    """``probe()`` once it is truthy (the ledger writes in batches, a fraction of a second after the request)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_usage_served_by_a_shows_on_b_with_the_same_totals(pair: Pair) -> None:
    a, b = pair.a.base_url, pair.b.base_url
    served = {"erin-a-1": a, "erin-a-2": a, "erin-a-3": a, "erin-b-1": b, "erin-b-2": b}
    for rid, base in served.items():
        r = generate(base, ERIN, f"hello from {rid} please", rid)
        assert r.status_code == 200, r.text
    expected_tokens = sum(2 * len(f"hello from {rid} please".split()) for rid in served)  # the dummy echoes the prompt

    def rows_on(base: str) -> set[str]:
        return {row["request_id"] for row in usage(base, key="erin")["items"]}

    assert eventually(lambda: rows_on(b) == set(served)), rows_on(b)
    assert rows_on(a) == set(served)
    for params in ({"group_by": "key"}, {"group_by": "key", "since": "1h"}, {"group_by": "day,surface,status"},
                   {"group_by": "surface", "since": "2h", "until": "2099-01-01"}):
        on_a, on_b = usage(a, key="erin", **params)["items"], usage(b, key="erin", **params)["items"]
        assert on_a == on_b, (params, on_a, on_b)
        assert len(on_a) == 1 and on_a[0]["requests"] == len(served), (params, on_a)
        assert on_a[0]["total_tokens"] == expected_tokens and on_a[0]["errors"] == 0, on_a
    assert usage(b, key="erin", since="2099-01-01", group_by="key")["items"] == []
    csv_b = httpx.get(f"{b}/api/v1/usage", headers={"X-API-Key": ERIN}, params={"format": "csv"}, timeout=30)
    assert csv_b.status_code == 200 and sum("erin-a-" in line for line in csv_b.text.splitlines()) == 3
    out = run_cli("usage", "--config-dir", str(pair.config_dir), "--group-by", "key", "--key", "erin", "--csv")
    assert out.returncode == 0, out.stderr
    assert f"erin,{len(served)}," in out.stdout, out.stdout


def test_request_limit_of_n_holds_across_both_replicas(pair: Pair) -> None:
    a, b = pair.a.base_url, pair.b.base_url
    statuses = [generate(base, LIMITED, "x").status_code for base in [a, b, a][:RPM]]
    assert statuses == [200] * RPM
    refused = generate(b, LIMITED, "one too many")
    assert refused.status_code == 429, refused.text
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "carol" in refused.json()["detail"] and LIMITED not in refused.text
    chat = httpx.post(f"{a}/v1/chat/completions", headers={"Authorization": f"Bearer {LIMITED}"}, timeout=30,
                      json={"model": "dummy", "messages": [{"role": "user", "content": "x"}]})
    assert chat.status_code == 429 and chat.json()["error"]["type"] == "rate_limit_error", chat.text
    assert generate(b, ALICE, "others still pass").status_code == 200


def test_daily_tokens_used_on_a_count_on_b(pair: Pair) -> None:
    a, b = pair.a.base_url, pair.b.base_url
    assert generate(a, DAILY, "a b c", "dave-a").status_code == 200  # 3 prompt + 3 answer tokens = the day's 6
    assert eventually(lambda: usage(b, key="dave")["items"])
    refused = generate(b, DAILY, "d")
    assert refused.status_code == 429 and "6 tokens for today" in refused.json()["detail"], refused.text
    assert 1 <= int(refused.headers["retry-after"]) <= 86400


def test_previous_response_id_created_on_a_continues_on_b(pair: Pair) -> None:
    on_a = openai.OpenAI(base_url=f"{pair.a.base_url}/v1", api_key=ALICE, max_retries=0)
    on_b = openai.OpenAI(base_url=f"{pair.b.base_url}/v1", api_key=ALICE, max_retries=0)
    bob_b = openai.OpenAI(base_url=f"{pair.b.base_url}/v1", api_key=BOB, max_retries=0)
    asked = on_a.responses.create(model="toolbot", input='{"word": "ukulele"}', tools=[TOOL])  # type: ignore[list-item]
    [call] = [item for item in asked.output if item.type == "function_call"]
    answered = on_b.responses.create(
        model="toolbot", previous_response_id=asked.id, tools=[TOOL],  # type: ignore[list-item]
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "a small guitar"}],
    )
    assert answered.output_text == "tool results: a small guitar", answered.output_text
    assert answered.usage is not None and answered.usage.input_tokens == 2  # the user message A stored is in B's prompt
    first = on_a.responses.create(model="dummy", input="my favourite colour is ultramarine")
    second = on_b.responses.create(model="dummy", input="which colour did I name?", previous_response_id=first.id)
    assert second.output_text == "which colour did I name?"
    third = on_a.responses.create(model="dummy", input="and now?", previous_response_id=second.id)
    assert third.output_text == "and now?"
    assert on_b.responses.retrieve(first.id).output_text == first.output_text
    with on_b.responses.create(model="dummy", input="streamed on B", stream=True) as events:
        done = [e for e in events if e.type == "response.completed"]
    assert len(done) == 1 and done[0].response.output_text == "streamed on B"
    assert on_a.responses.retrieve(done[0].response.id).output_text == "streamed on B"
    assert on_a.responses.retrieve(second.id).id == second.id
    with pytest.raises(openai.NotFoundError):  # another key neither reads nor continues it
        bob_b.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        bob_b.responses.create(model="dummy", input="steal", previous_response_id=first.id)
    with pytest.raises(openai.NotFoundError):
        bob_b.responses.delete(first.id)
    on_b.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        on_a.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        on_a.responses.create(model="dummy", input="again", previous_response_id=first.id)


def _same_totals(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> bool:
    """Equal, but for the last decimal of averages (sums of floats added in another order)."""
    def close(x: Any, y: Any) -> bool:
        return x == y or (isinstance(x, float) and isinstance(y, float) and abs(x - y) <= 0.0011)
    return len(got) == len(expected) and all(
        g.keys() == e.keys() and all(close(g[k], e[k]) for k in g) for g, e in zip(got, expected))


async def test_redis_ledger_answers_as_the_sqlite_ledger_for_the_same_records(tmp_path: Path,
                                                                                redis_server: RedisServer) -> None:
    """Same records into both ledgers; every query (filters, groups, ranges cutting hours) gives the same answer."""
    rng = random.Random(15)
    now = time.time()
    records = [
        UsageRecord(request_id=f"r{i}", ts=now - rng.uniform(0, 3 * 86400), surface=rng.choice(["api", "openai"]),
                    generation_type="ttt", key_id=f"key-{k}", key_name=f"user{k}", binding=rng.choice(["x", "y"]),
                    model=rng.choice(["m1", "m2", None]), personality=rng.choice([None, "p"]),
                    prompt_tokens=rng.choice([None, rng.randint(1, 50)]), completion_tokens=rng.randint(0, 80),
                    ttft_ms=rng.choice([None, round(rng.uniform(1, 90), 3)]), duration_ms=round(rng.uniform(1, 900), 3),
                    status=status, cancelled=status == "cancelled")
        for i in range(400) for k in [rng.randint(1, 3)] for status in [rng.choice(["ok", "ok", "error", "cancelled"])]
    ]
    sqlite = SqliteUsageLedger(tmp_path / "usage.sqlite")
    shared = RedisUsageLedger(redis_server.url, prefix=f"parity{rng.randint(0, 10**6)}:usage", max_records=1000)
    small = RedisUsageLedger(redis_server.url, prefix=f"small{rng.randint(0, 10**6)}:usage", max_records=50)
    for ledger in (sqlite, shared, small):
        await ledger.start()
        for rec in records:
            ledger.record(UsageRecord(**{f: getattr(rec, f) for f in RECORD_COLUMNS}))
    # a batch whose reply was lost is sent again by the writer: the second copy must not count
    again = [UsageRecord(request_id=f"again{i}", ts=now - 5 * i, surface="api", generation_type="ttt", key_id="key-1",
                         key_name="user1", prompt_tokens=i, completion_tokens=1, duration_ms=1.0) for i in range(5)]
    assert shared._write(again) == "written" and shared._write(again) == "written"
    for rec in again:
        sqlite.record(rec)
        small.record(UsageRecord(**{f: getattr(rec, f) for f in RECORD_COLUMNS}))
    try:
        queries = [UsageQuery(), UsageQuery(since=now - 86400 - 1234.5), UsageQuery(since=now - 2 * 86400, until=now - 3600.25),
                   UsageQuery(since=now - 1800, until=now - 600), UsageQuery(key="user2", status="error"),
                   UsageQuery(model="m1", binding="x", since=now - 40000.5), UsageQuery(key="key-3", limit=7)]
        for q in queries:
            assert await shared.rows(q) == await sqlite.rows(q), q
            for groups in ([], ["day"], ["hour", "key"], ["model", "status"], ["personality", "surface", "generation_type"]):
                expected, got = await sqlite.totals(q, groups), await shared.totals(q, groups)
                assert _same_totals(got, expected), (q, groups, got, expected)
        assert await shared.tokens_since(now - 86400) == await sqlite.tokens_since(now - 86400)
        # only the newest 50 records are kept one by one; the hourly totals still hold every record
        assert await small.rows(UsageQuery(limit=1000)) == await sqlite.rows(UsageQuery(limit=50))
        for groups in ([], ["day", "key"], ["hour", "model"]):
            q = UsageQuery(limit=1000)
            assert _same_totals(await small.totals(q, groups), await sqlite.totals(q, groups)), groups
    finally:
        await sqlite.close()
        await shared.close()
        await small.close()


def _metric(base: str, name: str) -> float:
    r = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {ALICE}"}, timeout=30)
    assert r.status_code == 200, r.text
    return sum(s.value for f in text_string_to_metric_families(r.text) for s in f.samples if s.name == name)


def test_redis_down_is_a_503_never_unlimited_and_queued_usage_arrives_later(pair: Pair, redis_server: RedisServer) -> None:
    """Last in the module: Redis comes back empty."""
    a, b = pair.a.base_url, pair.b.base_url
    redis_server.stop()
    try:
        for base in (a, b):
            limited = generate(base, LIMITED, "is anyone counting?")
            assert limited.status_code == 503, limited.text
            assert "Redis" in limited.json()["detail"] and "resource_manager.redis_url" in limited.json()["detail"]
            assert int(limited.headers["retry-after"]) > 0
        ready = httpx.get(f"{b}/health/ready", timeout=30)
        assert ready.status_code == 503 and "per-key limit store" in ready.text, ready.text
        read = httpx.get(f"{a}/api/v1/usage", headers={"X-API-Key": ALICE}, timeout=30)
        assert read.status_code == 503 and "usage ledger" in read.json()["detail"], read.text
        cont = httpx.post(f"{b}/v1/responses", headers={"Authorization": f"Bearer {ALICE}"}, timeout=30,
                          json={"model": "dummy", "input": "x", "previous_response_id": "resp_gone"})
        assert cont.status_code == 503 and cont.json()["error"]["message"], cont.text
        # an unlimited key on a binding without compute slots is served; its record waits in A's queue
        served = generate(a, ALICE, "written later", "held-while-down")
        assert served.status_code == 200, served.text
        assert eventually(lambda: _metric(a, "lollms_usage_write_failures_total") >= 1)
        assert _metric(a, "lollms_usage_queue_depth") >= 1
    finally:
        redis_server.restart()
    assert eventually(lambda: "held-while-down" in {r["request_id"] for r in usage(b, key="alice")["items"]}, 15)
    assert _metric(a, "lollms_usage_records_dropped_total") == 0
    assert generate(a, LIMITED, "counted again").status_code == 200  # empty Redis: a fresh window
    assert httpx.get(f"{b}/health/ready", timeout=30).status_code == 200
    assert "Traceback" not in pair.a.log() + pair.b.log()
