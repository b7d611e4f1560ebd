"""Usage ledger, named keys, per-key limits and Prometheus metrics through a real server process."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import run_cli, server, sse_events, write_config
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.e2e
ALICE = "alice-key-0123456789"
BOB = "bob-key-9876543210"
LIMITED = "limited-key-55555555"
PLAIN = "plain-key-777777777"
DAILY = "daily-key-444444444"
ERIN = "erin-key-333333333"
METRICS_TOKEN = "metrics-token-abcdef"


def prompt(text: str) -> dict[str, Any]:
    return {"input_data": [{"type": "text", "role": "user_prompt", "data": text}]}


def wait_for(predicate, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Any:
    d = tmp_path_factory.mktemp("usage") / "cfg"
    write_config(
        d,
        {"dummy": ("dummy_binding", {}), "slow": ("dummy_binding", {"stream_chunk_delay": 0.05}),
         "sleepy": ("dummy_binding", {"delay": 30.0})},
        api_keys=[{"key": ALICE, "name": "alice"}, {"key": BOB, "name": "bob"},  # type: ignore[list-item]
                  {"key": LIMITED, "name": "carol", "requests_per_minute": 2}, PLAIN,
                  {"key": DAILY, "name": "dave", "tokens_per_day": 6}, {"key": ERIN, "name": "erin"}],
        main={"metrics": {"token": METRICS_TOKEN}, "usage": {"retention_days": 30}},
    )
    with server(d) as s:
        s.config_dir = d
        yield s


def usage(base: str, api_key: str = ALICE, **params: Any) -> dict[str, Any]:
    r = httpx.get(f"{base}/api/v1/usage", headers={"X-API-Key": api_key}, params=params)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_every_surface_is_recorded_with_key_names(live: Any) -> None:
    base = live.base_url
    r = httpx.post(f"{base}/api/v1/generate", headers={"X-API-Key": ALICE, "X-Request-ID": "json-req-1"},
                   json=prompt("one two three"))
    assert r.status_code == 200 and r.headers["x-request-id"] == "json-req-1"
    assert r.json()["request_id"] == "json-req-1"
    with httpx.stream("POST", f"{base}/api/v1/generate", headers={"X-API-Key": ALICE},
                      json={**prompt("four five"), "stream": True}) as s:
        events = sse_events(s.read().decode())
    assert events[-1]["type"] == "final"

    from openai import OpenAI  # the real client, as its documentation shows

    client = OpenAI(base_url=f"{base}/v1", api_key=BOB)
    chat = client.chat.completions.create(model="dummy", messages=[{"role": "user", "content": "six seven eight nine"}])
    assert chat.choices[0].message.content == "six seven eight nine"
    pieces = [c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="dummy", messages=[{"role": "user", "content": "ten"}], stream=True) if c.choices]
    assert "".join(pieces) == "ten"

    by_key = {g["key"]: g for g in usage(base, group_by="key")["items"]}
    assert by_key["alice"]["requests"] == 2 and by_key["bob"]["requests"] == 2
    assert by_key["alice"]["prompt_tokens"] == 5 and by_key["alice"]["completion_tokens"] == 5
    assert by_key["bob"]["total_tokens"] == 10
    rows = usage(base, key="bob")["items"]
    assert {r["surface"] for r in rows} == {"openai"} and all(r["key_id"] == "bob" for r in rows)
    assert any(r["ttft_ms"] is not None for r in rows)  # the streamed one
    alice_rows = usage(base, key="alice")["items"]
    assert {r["surface"] for r in alice_rows} == {"api"}
    assert "json-req-1" in {r["request_id"] for r in alice_rows}
    assert all(r["prompt_text"] is None for r in alice_rows)  # text is off unless the operator turns it on


def test_ollama_requests_are_recorded(live: Any) -> None:
    import ollama  # the real client, as its documentation shows

    client = ollama.Client(host=live.base_url, headers={"Authorization": f"Bearer {ERIN}"})
    assert client.chat(model="dummy", messages=[{"role": "user", "content": "one two"}]).message.content == "one two"
    streamed = "".join(p.response for p in client.generate(model="dummy", prompt="three four five", stream=True))
    assert streamed == "three four five"

    def rows() -> list[dict[str, Any]]:
        return usage(live.base_url, key="erin")["items"]  # type: ignore[no-any-return]

    assert wait_for(lambda: len(rows()) == 2)
    assert {r["surface"] for r in rows()} == {"ollama"} and {r["status"] for r in rows()} == {"ok"}
    assert sorted(r["completion_tokens"] for r in rows()) == [2, 3]


def test_a_cancelled_stream_is_recorded_as_cancelled(live: Any) -> None:
    base = live.base_url
    words = " ".join(f"w{i}" for i in range(200))
    with httpx.stream("POST", f"{base}/api/v1/generate", headers={"X-API-Key": PLAIN, "X-Request-ID": "cancel-me"},
                      json={**prompt(words), "binding_name": "slow", "stream": True}) as s:
        lines = s.iter_lines()
        for line in lines:
            if line.startswith("data: ") and json.loads(line[6:])["type"] == "chunk":
                break

    def cancelled_row() -> list[dict[str, Any]]:
        return [r for r in usage(base, status="cancelled")["items"] if r["request_id"] == "cancel-me"]

    assert wait_for(lambda: bool(cancelled_row()))
    row = cancelled_row()[0]
    assert row["cancelled"] is True and row["binding"] == "slow" and row["key_name"].startswith("key-")


def test_a_json_request_whose_client_leaves_is_recorded_as_cancelled(live: Any) -> None:
    base = live.base_url
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{base}/api/v1/generate", headers={"X-API-Key": PLAIN, "X-Request-ID": "json-gone"},
                   json={**prompt("wait for me"), "binding_name": "sleepy"}, timeout=0.5)

    def row() -> list[dict[str, Any]]:
        return [r for r in usage(base, binding="sleepy")["items"] if r["request_id"] == "json-gone"]

    assert wait_for(lambda: bool(row()))
    assert row()[0]["status"] == "cancelled" and row()[0]["surface"] == "api" and row()[0]["duration_ms"] < 10000


def test_grouping_csv_filters_and_bad_input(live: Any) -> None:
    base = live.base_url
    httpx.post(f"{base}/api/v1/generate", headers={"X-API-Key": ALICE}, json=prompt("grouped"))
    day = usage(base, group_by="day,model")["items"]
    assert day and {"day", "model", "requests", "total_tokens"} <= set(day[0])
    r = httpx.get(f"{base}/api/v1/usage", headers={"X-API-Key": ALICE}, params={"group_by": "key", "format": "csv"})
    assert r.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(r.text)))
    assert "alice" in {row["key"] for row in table}
    assert usage(base, since="2099-01-01")["items"] == []
    for bad in ({"group_by": "password"}, {"since": "yesterday-ish"}):
        r = httpx.get(f"{base}/api/v1/usage", headers={"X-API-Key": ALICE}, params=bad)
        assert r.status_code == 400 and r.json()["detail"]
    assert httpx.get(f"{base}/api/v1/usage").status_code == 403


def test_keys_never_reach_the_database_and_the_cli_reads_it(live: Any) -> None:
    usage(live.base_url)  # flushes the writer
    db = Path(live.config_dir) / "usage.sqlite"
    with sqlite3.connect(db) as conn:
        dump = "\n".join(conn.iterdump())
    for key in (ALICE, BOB, PLAIN):
        assert key not in dump
    assert "alice" in dump
    out = run_cli("usage", "--config-dir", str(live.config_dir), "--group-by", "key")
    assert out.returncode == 0, out.stderr
    assert "alice" in out.stdout and "bob" in out.stdout
    out = run_cli("usage", "--config-dir", str(live.config_dir), "--group-by", "nope")
    assert out.returncode == 2 and "cannot group by" in out.stderr


def test_per_key_request_limit_answers_429_with_retry_after(live: Any) -> None:
    base = live.base_url
    statuses = [httpx.post(f"{base}/api/v1/generate", headers={"X-API-Key": LIMITED}, json=prompt("x")).status_code
                for _ in range(2)]
    assert statuses == [200, 200]
    r = httpx.post(f"{base}/api/v1/generate", headers={"X-API-Key": LIMITED}, json=prompt("x"))
    assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
    assert "carol" in r.json()["detail"] and LIMITED not in r.text
    r = httpx.post(f"{base}/v1/chat/completions", headers={"Authorization": f"Bearer {LIMITED}"},
                   json={"model": "dummy", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error" and r.headers["retry-after"]
    ok = httpx.post(f"{base}/api/v1/generate", headers={"X-API-Key": ALICE}, json=prompt("others still pass"))
    assert ok.status_code == 200


def test_per_key_daily_tokens_answer_429_until_midnight(live: Any) -> None:
    base = live.base_url
    r = httpx.post(f"{base}/api/v1/generate", headers={"X-API-Key": DAILY}, json=prompt("a b c"))  # 3 + 3 tokens
    assert r.status_code == 200
    r = httpx.post(f"{base}/api/v1/generate", headers={"X-API-Key": DAILY}, json=prompt("d"))
    assert r.status_code == 429 and "6 tokens for today" in r.json()["detail"]
    assert 1 <= int(r.headers["retry-after"]) <= 86400


def test_metrics_parse_and_need_their_token(live: Any) -> None:
    base = live.base_url
    assert httpx.get(f"{base}/metrics").status_code == 403
    assert httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {ALICE}"}).status_code == 401
    httpx.post(f"{base}/api/v1/generate", headers={"X-API-Key": ALICE}, json=prompt("metric me please"))
    r = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert r.status_code == 200 and r.headers["x-request-id"]
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    gens = [s for s in families["lollms_generations"].samples
            if s.name == "lollms_generations_total" and s.labels == {"surface": "api", "binding": "dummy", "status": "ok"}]
    assert gens and gens[0].value >= 1
    tokens = {s.labels["kind"]: s.value for s in families["lollms_tokens"].samples
              if s.name == "lollms_tokens_total" and s.labels["surface"] == "api"}
    assert tokens["prompt"] >= 3 and tokens["completion"] >= 3
    count = [s for s in families["lollms_generation_duration_seconds"].samples if s.name.endswith("_count")]
    assert sum(s.value for s in count) >= 1
    assert any(s.name.endswith("_count") and s.value >= 1 for s in families["lollms_time_to_first_token_seconds"].samples)
    assert families["lollms_queue_depth"].samples[0].value == 0
    assert {s.labels["state"]: s.value for s in families["lollms_binding_instances"].samples}["loaded"] == 3
    routes = {s.labels["route"] for s in families["lollms_http_requests"].samples}
    assert "/api/v1/generate" in routes
    errors = {s.labels["kind"] for s in families["lollms_errors"].samples if s.name == "lollms_errors_total"}
    assert "429_RateLimitedError" in errors  # the limit test ran before this one


def test_request_id_and_process_time_on_every_response(live: Any) -> None:
    base = live.base_url
    r = httpx.get(f"{base}/health")
    assert len(r.headers["x-request-id"]) >= 8 and float(r.headers["x-process-time"]) >= 0
    assert r.headers["server-timing"].startswith("app;dur=")
    bad = "x" * 300
    r = httpx.get(f"{base}/api/v1/list_bindings", headers={"X-Request-ID": bad})  # 403 still carries one
    assert r.status_code == 403 and r.headers["x-request-id"] != bad and len(r.headers["x-request-id"]) <= 128
    r = httpx.get(f"{base}/health", headers={"X-Request-ID": "bad id with spaces"})
    assert r.headers["x-request-id"] != "bad id with spaces"
    r = httpx.options(f"{base}/api/v1/generate", headers={  # a CORS preflight answered by the CORS middleware
        "Origin": "http://localhost:9601", "Access-Control-Request-Method": "POST", "X-Request-ID": "pre-1"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "pre-1"


@pytest.mark.parametrize("entry, problem", [
    ({"key": "", "name": "x"}, "'key' must be a non-empty string"),
    ({"key": "abcdefgh", "name": "bad name!"}, "'name' must be"),
    ({"key": "abcdefgh", "requests_per_minute": 0}, "requests_per_minute"),
    ({"key": "abcdefgh", "colour": "red"}, "unknown field"),
])
def test_bad_key_entries_stop_start_up_naming_the_entry(tmp_path: Path, entry: dict[str, Any], problem: str) -> None:
    d = tmp_path / "cfg"
    write_config(d, api_keys=["first-key-123456", entry])  # type: ignore[list-item]
    out = run_cli("serve", "--config-dir", str(d), "--port", "1")
    assert out.returncode == 2
    assert "security.allowed_api_keys[1]" in out.stderr and problem in out.stderr
    assert "first-key-123456" not in out.stderr


async def test_text_is_stored_only_when_turned_on_and_old_rows_expire(tmp_path: Path) -> None:
    from helpers import API_KEY, api_client

    from lollms_server.core.usage_sqlite import connect

    d = tmp_path / "cfg"
    write_config(d, main={"usage": {"store_text": True, "retention_days": 7}})
    conn = connect(d / "usage.sqlite")  # a row from 30 days ago, written before this start
    conn.execute("INSERT INTO usage (request_id, ts, surface, generation_type, duration_ms, status, cancelled) "
                 "VALUES ('ancient', ?, 'api', 'ttt', 1, 'ok', 0)", (time.time() - 30 * 86400,))
    conn.commit()
    conn.close()
    async with api_client(d) as client:
        answer = await client.post("/api/v1/generate", json=prompt("keep my words"))
        assert answer.status_code == 200
        rows = (await client.get("/api/v1/usage", headers={"X-API-Key": API_KEY})).json()["items"]
    assert [row["request_id"] for row in rows] == [answer.json()["request_id"]]  # the 30-day-old row is gone
    assert rows[0]["prompt_text"] == "keep my words" and rows[0]["answer_text"] == "keep my words"


@pytest.mark.parametrize("count", [1, 49, 50, 51, 173])
async def test_the_sqlite_ledger_keeps_every_record_once_with_its_values(tmp_path: Path, count: int) -> None:
    """Records written in batches of any size come back once each, every column as recorded (rows are grouped
    into multi-row statements: a group boundary must neither drop nor repeat nor shift a record)."""
    from lollms_server.core.usage import RECORD_COLUMNS, UsageQuery, UsageRecord
    from lollms_server.core.usage_sqlite import SqliteUsageLedger

    now = time.time()
    records = [
        UsageRecord(request_id=f"r{i}", ts=now - i, surface=("api", "openai")[i % 2], generation_type="ttt",
                    key_id=f"k{i % 3}", key_name=None if i % 5 == 0 else f"user{i % 3}", binding=f"b{i % 4}",
                    model=None if i % 7 == 0 else "m", personality="p" if i % 2 else None,
                    prompt_tokens=None if i % 6 == 0 else i, completion_tokens=2 * i, ttft_ms=None if i % 4 else i / 8,
                    duration_ms=i + 0.5, status=("ok", "error", "cancelled")[i % 3], cancelled=i % 3 == 2,
                    error="500_BackendError" if i % 3 == 1 else None)
        for i in range(count)
    ]
    ledger = SqliteUsageLedger(tmp_path / "usage.sqlite")
    await ledger.start()
    for rec in records:
        ledger.record(rec)
    await ledger.close()  # everything queued is written as the writer ends
    reader = SqliteUsageLedger(tmp_path / "usage.sqlite")
    rows = await reader.rows(UsageQuery(limit=1000))
    assert rows == [{c: getattr(rec, c) for c in RECORD_COLUMNS} for rec in records]  # newest (smallest i) first
    assert ledger.written == count and ledger.dropped == 0
