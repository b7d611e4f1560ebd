"""Chat answers run as server jobs, in real Chromium against a real lollms-server process: a page reload
mid-answer resumes the stream after the last event shown (Last-Event-ID) and the answer ends up whole, exactly
once; an answer that ended while the page was closed is fetched; a dropped connection reconnects; Stop cancels
the job on the server (and a job cancelled elsewhere shows as stopped); a job the server no longer has (restarted) is marked interrupted, never left spinning.
On a scale-out cluster (two replicas and two workers sharing jobs through a real Redis), an answer moves from one
replica to the other and survives a reload and a worker killed mid-answer."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from helpers import API_KEY, ServerProcess, free_port, write_config
from jobs_support import WorkerProcess
from redis_fixture import RedisServer, redis_server_fixture  # noqa: F401  (the `redis_server` fixture)
from webui_support import TcpRelay, ensure_built, launched_chromium

pytestmark = pytest.mark.e2e

DESKTOP = {"width": 1280, "height": 820}
WORDS = [f"w{i}" for i in range(1, 25)]
PROMPT = " ".join(WORDS)  # the dummy binding answers with the prompt, one word every 0.25 s (about 6 s)
# Every text the last reply shows, from the first paint of each page load (so a duplicated or lost piece shows).
WATCH_REPLY = """
window.__replyTexts = [];
new MutationObserver(() => {
  const replies = document.querySelectorAll('[data-testid=reply-text]');
  const last = replies[replies.length - 1];
  if (last) { const t = last.textContent.trim(); if (window.__replyTexts.at(-1) !== t) window.__replyTexts.push(t); }
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def _config(root: Path) -> Path:
    cfg = root / "cfg"
    write_config(cfg, {"slow": ("dummy_binding", {"stream_chunk_delay": 0.25})},
                 defaults={"ttt_binding": "slow"}, main={"webui": {"enable_ui": True}})
    return cfg


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    ensure_built()
    with ServerProcess(_config(tmp_path_factory.mktemp("uijobs"))) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched_chromium() as b:
        yield b


def api(srv: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=srv.base_url, headers={"X-API-Key": API_KEY}, timeout=30)


def open_ui(browser: Any, url: str) -> Any:
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(30_000)
    context.add_init_script(WATCH_REPLY)
    page = context.new_page()
    page.goto(url + "/")
    page.fill("input[name=api-key]", API_KEY)
    page.click("[data-testid=connect-button]")
    page.wait_for_selector("[data-testid=prompt-input]")
    return page


def seeded_context(browser: Any, conversations: list[dict[str, Any]]) -> Any:
    """A browser context whose first page load finds these conversations (and the API key) saved."""
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(30_000)
    context.add_init_script(WATCH_REPLY)
    context.add_init_script(f"""if (!sessionStorage.getItem('seeded')) {{
      sessionStorage.setItem('seeded', '1');
      localStorage.setItem('lollms.settings.v1', JSON.stringify({{apiKey: {json.dumps(API_KEY)}}}));
      localStorage.setItem('lollms.conversations.v1', {json.dumps(json.dumps(conversations))});
    }}""")
    return context


def start_answer(page: Any) -> str:
    """Send PROMPT; the job id once the answer is on screen up to w3."""
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/api/v1/jobs")) as created:
        page.fill("[data-testid=prompt-input]", PROMPT)
        page.press("[data-testid=prompt-input]", "Enter")
    assert created.value.status == 202
    page.wait_for_selector("[data-testid=reply-text]:has-text('w3')")
    return str(created.value.json()["job_id"])


def reply_text(page: Any) -> str:
    return str(page.locator("[data-testid=message-assistant]").last.locator("[data-testid=reply-text]").inner_text()).strip()


def wait_finished(page: Any, timeout: float = 60_000) -> str:
    page.wait_for_selector("[data-testid=message-assistant]:last-of-type:not([data-status=streaming])", timeout=timeout)
    return str(page.locator("[data-testid=message-assistant]").last.get_attribute("data-status"))


def assert_grew_without_repeats(page: Any) -> None:
    """Every text the reply showed on this page load is the start of the answer: nothing twice, nothing skipped."""
    seen: list[str] = page.evaluate("window.__replyTexts")
    assert seen, "the reply never showed"
    for text in seen:
        assert PROMPT.startswith(text), f"the reply showed {text!r}, which is not the start of the answer"


def job_state(srv: ServerProcess, job_id: str) -> dict[str, Any]:
    with api(srv) as client:
        r = client.get(f"/api/v1/jobs/{job_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())


def test_reload_mid_answer_resumes_the_stream_and_shows_the_whole_answer_once(browser: Any, server: ServerProcess) -> None:
    page = open_ui(browser, server.base_url)
    job_id = start_answer(page)
    events: list[Any] = []
    page.on("request", lambda r: events.append(r) if r.url.split("?")[0].endswith(f"/api/v1/jobs/{job_id}/events") else None)
    page.reload()
    page.wait_for_selector("[data-testid=message-assistant]")
    assert wait_finished(page) == "done"
    assert reply_text(page) == PROMPT
    assert_grew_without_repeats(page)
    seen: list[str] = page.evaluate("window.__replyTexts")
    assert seen[0].startswith("w1 w2 w3"), f"the text received before the reload was not shown at once: {seen[:3]}"
    # The reloaded page asked only for what it had not shown yet.
    assert events, "the reloaded page did not follow the job's events"
    resumed_after = events[0].all_headers().get("last-event-id")
    assert resumed_after, "the stream was not resumed with Last-Event-ID"
    job = job_state(server, job_id)
    assert job["state"] == "succeeded"
    assert job["result"]["output"][0]["data"] == PROMPT
    # Once finished, the job is forgotten: another reload shows the answer and follows nothing.
    events.clear()
    page.reload()
    page.wait_for_selector("[data-testid=message-assistant][data-status=done]")
    page.wait_for_timeout(500)
    assert reply_text(page) == PROMPT and not events
    page.context.close()


def test_an_answer_that_ended_while_the_page_was_closed_is_fetched(browser: Any, server: ServerProcess) -> None:
    page = open_ui(browser, server.base_url)
    job_id = start_answer(page)
    context = page.context
    page.close()
    deadline = time.monotonic() + 30
    while job_state(server, job_id)["state"] != "succeeded":
        assert time.monotonic() < deadline, "the job did not finish on the server"
        time.sleep(0.2)
    page = context.new_page()
    asked: list[str] = []
    page.on("request", lambda r: asked.append(f"{r.method} {r.url.split('?')[0]}") if "/api/v1/jobs" in r.url else None)
    page.goto(server.base_url + "/")
    assert wait_finished(page) == "done"
    assert reply_text(page) == PROMPT
    assert f"GET {server.base_url}/api/v1/jobs/{job_id}" in asked
    assert not any(a.endswith("/events") for a in asked), asked  # the result came whole, no stream needed
    context.close()


def test_stop_cancels_the_job_on_the_server(browser: Any, server: ServerProcess) -> None:
    page = open_ui(browser, server.base_url)
    job_id = start_answer(page)
    with page.expect_request(lambda r: r.method == "DELETE" and r.url.endswith(f"/api/v1/jobs/{job_id}")):
        page.click("[data-testid=stop-button]")
    page.wait_for_selector("[data-testid=message-assistant][data-status=stopped]")
    assert page.locator("[data-testid=stopped-note]").count() == 1
    assert job_state(server, job_id)["state"] == "cancelled"
    shown = reply_text(page)
    assert shown != PROMPT and PROMPT.startswith(shown)
    page.reload()  # a stopped answer stays stopped: nothing resumes it
    page.wait_for_selector("[data-testid=message-assistant][data-status=stopped]")
    page.wait_for_timeout(1000)
    assert reply_text(page) == shown
    page.context.close()


def test_a_job_cancelled_elsewhere_shows_as_stopped_not_failed(browser: Any, server: ServerProcess) -> None:
    page = open_ui(browser, server.base_url)
    job_id = start_answer(page)
    with api(server) as client:  # another tab, or a script with the same key
        assert client.delete(f"/api/v1/jobs/{job_id}").json()["state"] == "cancelled"
    assert wait_finished(page) == "stopped"
    assert page.locator("[data-testid=reply-error]").count() == 0
    assert PROMPT.startswith(reply_text(page)) and reply_text(page).startswith("w1 w2 w3")
    page.context.close()


def test_an_unfinished_answer_saved_without_a_job_is_marked_interrupted(browser: Any, server: ServerProcess) -> None:
    """Saved by an older UI, or cut before its job existed: nothing can resume it, so it must not spin."""
    saved = [{"id": "c1", "title": "Old chat", "createdAt": 1, "updatedAt": 1, "messages": [
        {"id": "u1", "role": "user", "kind": "ttt", "content": "hello", "createdAt": 1, "parentId": None},
        {"id": "a1", "role": "assistant", "kind": "ttt", "content": "Hel", "status": "streaming", "createdAt": 2, "parentId": "u1"},
    ]}]
    context = seeded_context(browser, saved)
    page = context.new_page()
    page.goto(server.base_url + "/")
    assert wait_finished(page) == "interrupted"
    reply = page.locator("[data-testid=message-assistant]").last
    assert "interrupted when the page was closed" in reply.locator("[data-testid=reply-error]").inner_text()
    assert reply_text(page) == "Hel"
    context.close()


def test_an_answer_cut_off_by_a_lost_connection_is_picked_up_on_the_next_load(browser: Any, server: ServerProcess) -> None:
    """After the reconnection attempts ran out, the answer says so and keeps its job: the next load resumes it."""
    text, last_id = "", ""
    with api(server) as client:
        job_id = client.post("/api/v1/jobs", json={"input_data": [{"type": "text", "role": "user_prompt", "data": PROMPT}],
                                                   "generation_type": "ttt", "stream": True}).json()["job_id"]
        with client.stream("GET", f"/api/v1/jobs/{job_id}/events") as events:  # what the page had shown
            for line in events.iter_lines():
                if line.startswith("id:"):
                    last_id = line[3:].strip()
                elif line.startswith("data:") and (chunk := json.loads(line[5:]))["type"] == "chunk":
                    text += chunk["content"]
                    if "w2 " in text:
                        break
    saved = [{"id": "c1", "title": "Cut off", "createdAt": 1, "updatedAt": 1, "messages": [
        {"id": "u1", "role": "user", "kind": "ttt", "content": PROMPT, "createdAt": 1, "parentId": None},
        {"id": "a1", "role": "assistant", "kind": "ttt", "content": text, "status": "interrupted", "createdAt": 2, "parentId": "u1",
         "error": "Lost the connection to the server and could not reconnect (7 attempts).",
         "job": {"id": job_id, "lastEventId": last_id, "streamed": True}},
    ]}]
    context = seeded_context(browser, saved)
    page = context.new_page()
    page.goto(server.base_url + "/")
    assert wait_finished(page) == "done"
    assert reply_text(page) == PROMPT
    assert_grew_without_repeats(page)
    assert page.locator("[data-testid=reply-error]").count() == 0
    context.close()


def test_a_dropped_connection_reconnects_after_the_last_event(browser: Any, server: ServerProcess) -> None:
    proxy = TcpRelay(server.port)
    try:
        page = open_ui(browser, proxy.url)
        job_id = start_answer(page)
        events: list[Any] = []
        page.on("request", lambda r: events.append(r) if r.url.split("?")[0].endswith(f"/api/v1/jobs/{job_id}/events") else None)
        proxy.cut()
        assert wait_finished(page) == "done"
        assert reply_text(page) == PROMPT
        assert_grew_without_repeats(page)
        assert events and events[0].all_headers().get("last-event-id"), "the reconnection did not resume after the last event"
        page.context.close()
    finally:
        proxy.close()


def test_a_job_the_restarted_server_no_longer_has_is_marked_interrupted(browser: Any, tmp_path: Path) -> None:
    ensure_built()
    cfg = _config(tmp_path)
    port = free_port()
    first = ServerProcess(cfg, port=port).start()
    try:
        page = open_ui(browser, first.base_url)
        start_answer(page)
        assert first.proc is not None
        first.proc.kill()  # embedded mode keeps jobs in memory: they die with the process
        first.proc.wait(10)
    finally:
        first.stop()
    with ServerProcess(cfg, port=port):
        assert wait_finished(page) == "interrupted"
        reply = page.locator("[data-testid=message-assistant]").last
        assert "no longer has" in reply.locator("[data-testid=reply-error]").inner_text()
        assert reply_text(page).startswith("w1 w2 w3")  # what arrived before stays
        assert page.locator("[data-testid=stop-button]").count() == 0  # not busy any more: a new message can go
    page.context.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[tuple[ServerProcess, ServerProcess, list[WorkerProcess]]]:
    """Replicas A and B (they run no jobs themselves) and two `lollms-server worker`s, sharing one Redis."""
    ensure_built()
    cfg = tmp_path_factory.mktemp("uijobs-redis") / "cfg"
    write_config(cfg, {"slow": ("dummy_binding", {"stream_chunk_delay": 0.25})}, defaults={"ttt_binding": "slow"}, main={
        "webui": {"enable_ui": True},
        "resource_manager": {"backend": "redis", "redis_url": redis_server.url, "lease_seconds": 2},
        "jobs": {"run_locally": False, "claim_idle_s": 2, "max_attempts": 2, "stop_grace_s": 0},
    })
    a, b = ServerProcess(cfg), ServerProcess(cfg)
    workers = [WorkerProcess(cfg, name="w1"), WorkerProcess(cfg, name="w2")]
    try:
        for process in (a, b, *workers):
            process.start()
        yield a, b, workers
    finally:
        for w in workers:
            w.stop()
        a.stop()
        b.stop()


def test_on_a_cluster_an_answer_moves_to_another_replica_and_survives_a_killed_worker(
        browser: Any, cluster: tuple[ServerProcess, ServerProcess, list[WorkerProcess]]) -> None:
    a, b, workers = cluster
    balancer = TcpRelay(a.port)
    try:
        page = open_ui(browser, balancer.url)
        job_id = start_answer(page)  # created through replica A
        events: list[Any] = []
        page.on("request", lambda r: events.append(r) if r.url.split("?")[0].endswith(f"/api/v1/jobs/{job_id}/events") else None)
        balancer.target_port = b.port  # A leaves the pool; its connections drop
        balancer.cut()
        page.wait_for_selector("[data-testid=reply-text]:has-text('w5')")  # followed again, through B
        assert events and events[0].all_headers().get("last-event-id")
        page.reload()  # and a reload, through B too
        page.wait_for_selector("[data-testid=reply-text]:has-text('w6')")
        deadline = time.monotonic() + 20
        while not (running := [w for w in workers if f"job {job_id} started" in w.log()]):
            assert time.monotonic() < deadline, "no worker started the job"
            time.sleep(0.05)
        assert running[0].proc is not None
        running[0].proc.kill()  # kill -9 mid-answer: the other worker takes the job over and starts it again
        try:
            assert wait_finished(page, timeout=90_000) == "done"
        except Exception as exc:  # what each process saw, for a failure that does not reproduce on its own
            logs = "\n".join(f"--- {label} ---\n{p.log()[-4000:]}" for label, p in
                              (("worker 1", workers[0]), ("worker 2", workers[1]), ("replica A", a), ("replica B", b)))
            try:
                state: Any = job_state(a, job_id)
            except Exception as err:  # noqa: BLE001 - the report must not hide the logs
                state = err
            raise AssertionError(f"{exc}\njob: {state}\nreply: {reply_text(page)!r}\n{logs}") from exc
        assert reply_text(page) == PROMPT
        seen: list[str] = page.evaluate("window.__replyTexts")
        assert all(PROMPT.startswith(t) for t in seen), seen  # nothing doubled, before or after the restart
        assert any(len(later) < len(earlier) for earlier, later in zip(seen, seen[1:])), f"the restart did not start the answer again: {seen}"
        job = job_state(a, job_id)
        assert job["state"] == "succeeded" and job["attempts"] == 2, job
        page.context.close()
    finally:
        balancer.close()

