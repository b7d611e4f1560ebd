"""The web UI in real headless Chromium against a real lollms-server process (dummy binding instances)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from helpers import API_KEY, ServerProcess, write_config
from webui_support import artifact, ensure_built, is_generation, launched_chromium

pytestmark = pytest.mark.e2e

DESKTOP = {"width": 1280, "height": 820}
PHONE = {"width": 390, "height": 844}
LONG_PROMPT = " ".join(f"word{i}" for i in range(80))
WATCH_CSP = ("window.__cspViolations = []; document.addEventListener('securitypolicyviolation', "
             "e => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));")
# Collects every text the last reply showed, to prove it arrived in pieces (no timing involved).
WATCH_REPLY = """() => {
  window.__replyTexts = [];
  new MutationObserver(() => {
    const replies = document.querySelectorAll('[data-testid=reply-text]');
    const last = replies[replies.length - 1];
    if (last) { const t = last.textContent; if (window.__replyTexts.at(-1) !== t) window.__replyTexts.push(t); }
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    ensure_built()
    cfg = tmp_path_factory.mktemp("webui") / "cfg"
    write_config(
        cfg,
        {
            "dummy": ("dummy_binding", {"stream_chunk_delay": 0.02}),
            "slow": ("dummy_binding", {"stream_chunk_delay": 0.25, "requires_gpu": True}),
            "broken": ("dummy_binding", {"mode": "fail_load"}),
            "thinker": ("dummy_binding", {"mode": "think"}),
        },
        defaults={"ttt_binding": "dummy", "tti_binding": "dummy", "tts_binding": "dummy"},
        main={"webui": {"enable_ui": True}},
    )
    with ServerProcess(cfg) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched_chromium() as b:
        yield b


def open_ui(browser: Any, srv: ServerProcess, viewport: dict[str, int] = DESKTOP, key: str | None = API_KEY) -> Any:
    """A fresh browser context (empty localStorage) on the UI; connected with ``key`` unless it is None."""
    context = browser.new_context(viewport=viewport, accept_downloads=True)
    context.set_default_timeout(30_000)
    context.add_init_script(WATCH_CSP)  # the server's Content-Security-Policy must not block anything the UI does
    page = context.new_page()
    page.goto(srv.base_url + "/")
    page.wait_for_selector("[data-testid=connect-form]")
    if key is not None:
        page.fill("input[name=api-key]", key)
        page.click("[data-testid=connect-button]")
        page.wait_for_selector("[data-testid=prompt-input]")
    return page


def send(page: Any, text: str) -> None:
    page.fill("[data-testid=prompt-input]", text)
    page.press("[data-testid=prompt-input]", "Enter")


def last_reply(page: Any) -> Any:
    return page.locator("[data-testid=message-assistant]").last


def wait_done(page: Any) -> Any:
    reply = last_reply(page)
    page.wait_for_selector("[data-testid=message-assistant]:last-of-type:not([data-status=streaming])")
    assert page.evaluate("window.__cspViolations || []") == [], "the UI broke its Content-Security-Policy"
    return reply


def test_connect_refuses_a_wrong_or_missing_key_then_connects(browser: Any, ui_server: ServerProcess) -> None:
    page = open_ui(browser, ui_server, key=None)
    page.click("[data-testid=connect-button]")
    assert "needs an API key" in page.inner_text("[data-testid=connect-error]")
    page.fill("input[name=api-key]", "not-the-key")
    page.click("[data-testid=connect-button]")
    page.wait_for_selector("[data-testid=connect-error]:has-text('refused')")
    page.screenshot(path=artifact("connect-wrong-key.png"))
    assert "not-the-key" not in page.inner_text("body")
    page.fill("input[name=api-key]", API_KEY)
    page.click("[data-testid=connect-button]")
    page.wait_for_selector("[data-testid=prompt-input]")
    assert page.locator("[data-testid=connect-error]").count() == 0
    page.reload()  # the key is remembered in this browser
    page.wait_for_selector("[data-testid=prompt-input]")
    page.context.close()


def test_streamed_reply_appears_in_pieces_with_usage(browser: Any, ui_server: ServerProcess) -> None:
    page = open_ui(browser, ui_server)
    page.evaluate(WATCH_REPLY)
    send(page, "Please **echo** this short sentence back with `code` in it")
    reply = wait_done(page)
    assert reply.get_attribute("data-status") == "done"
    text = reply.locator("[data-testid=reply-text]").inner_text()
    assert text == "Please echo this short sentence back with code in it"
    assert reply.locator("strong").inner_text() == "echo"  # rendered as Markdown
    seen: list[str] = page.evaluate("window.__replyTexts")
    assert len(seen) >= 3 and seen[0] != seen[-1], f"reply did not stream: {seen}"
    assert all(text.startswith(s.strip()) for s in seen)
    stats = reply.locator("[data-testid=reply-stats]").inner_text()
    assert "tokens" in stats and "tok/s" in stats
    page.screenshot(path=artifact("chat-desktop.png"))
    page.context.close()


def test_shift_enter_newline_edit_and_retry(browser: Any, ui_server: ServerProcess) -> None:
    page = open_ui(browser, ui_server)
    box = page.locator("[data-testid=prompt-input]")
    box.type("line one")
    box.press("Shift+Enter")
    box.type("line two")
    assert page.locator("[data-testid=message-user]").count() == 0
    box.press("Enter")
    wait_done(page)
    assert page.locator("[data-testid=message-user] .plain").inner_text() == "line one\nline two"
    page.click("[data-testid=message-user] [data-testid=edit]")
    page.fill("[data-testid=edit-input]", "edited prompt")
    page.click("[data-testid=edit-save]")
    page.wait_for_selector("[data-testid=reply-text]:has-text('edited prompt')")
    wait_done(page)
    page.click("[data-testid=retry]")
    page.wait_for_selector("[data-testid=reply-text]:has-text('edited prompt')")
    wait_done(page)
    assert page.locator("[data-testid=message-assistant]").count() == 1
    assert page.locator("[data-testid=message-user]").count() == 1
    page.context.close()


def test_thoughts_are_shown_in_a_collapsible_block(browser: Any, ui_server: ServerProcess) -> None:
    page = open_ui(browser, ui_server)
    page.select_option("[data-testid=binding-select-ttt]", "thinker")
    send(page, "why is the sky blue")
    reply = wait_done(page)
    assert reply.locator("[data-testid=reply-text]").inner_text() == "why is the sky blue"
    thoughts = reply.locator("[data-testid=thoughts]")
    assert thoughts.get_attribute("open") is None  # collapsed
    thoughts.locator("summary").click()
    assert "The user said: why is the sky blue" in thoughts.inner_text()
    assert "<think>" not in reply.inner_text()
    page.context.close()


def start_long_reply(browser: Any, ui_server: ServerProcess, seen: str) -> Any:
    """A page streaming LONG_PROMPT from the slow instance, once ``seen`` is on screen."""
    page = open_ui(browser, ui_server)
    page.select_option("[data-testid=binding-select-ttt]", "slow")
    send(page, LONG_PROMPT)
    page.wait_for_selector(f"[data-testid=reply-text]:has-text('{seen}')")
    return page


def test_escape_stops_a_reply(browser: Any, ui_server: ServerProcess) -> None:
    page = start_long_reply(browser, ui_server, "word1")
    page.press("[data-testid=prompt-input]", "Escape")
    page.wait_for_selector("[data-testid=message-assistant][data-status=stopped]")
    page.context.close()


def test_stop_aborts_the_stream_and_the_server_frees_the_slot(browser: Any, ui_server: ServerProcess) -> None:
    page = start_long_reply(browser, ui_server, "word2")
    page.click("[data-testid=stop-button]")
    page.wait_for_selector("[data-testid=message-assistant][data-status=stopped]")
    assert page.locator("[data-testid=stopped-note]").count() == 1
    shown = last_reply(page).locator("[data-testid=reply-text]").inner_text()
    assert "word79" not in shown
    page.screenshot(path=artifact("chat-stopped.png"))
    # The server cancelled the work: the "slow" instance's resource slot is released long before the
    # 20 s the full reply would take (polled, at most 10 s).
    with httpx.Client(base_url=ui_server.base_url, headers={"X-API-Key": API_KEY}) as client:
        for _ in range(100):
            if client.get("/api/v1/resources").json()["active"] == 0:
                break
            page.wait_for_timeout(100)
        assert client.get("/api/v1/resources").json()["active"] == 0
    assert last_reply(page).locator("[data-testid=reply-text]").inner_text() == shown  # nothing more arrived
    page.context.close()


def test_pick_a_personality(browser: Any, ui_server: ServerProcess) -> None:
    page = open_ui(browser, ui_server)
    page.click("[data-testid=personality-lollms]")
    assert page.inner_text("[data-testid=active-personality]") == "lollms"
    # Its icon is fetched with the API key and shown from a blob: URL.
    icon = page.locator("[data-testid=personality-lollms] img")
    icon.wait_for()
    assert icon.get_attribute("src").startswith("blob:")
    assert page.evaluate("document.querySelector('[data-testid=personality-lollms] img').naturalWidth") > 0
    with page.expect_request(is_generation) as req:
        send(page, "hello personality")
    body = json.loads(req.value.post_data)
    assert body["personality"] == "lollms" and body["stream"] is True
    assert body["input_data"][-1] == {"type": "text", "role": "user_prompt", "data": "hello personality"}
    wait_done(page)
    assert last_reply(page).locator(".who").inner_text() == "lollms"
    page.screenshot(path=artifact("personality.png"))
    page.context.close()


def test_multi_turn_sends_earlier_turns_in_order(browser: Any, ui_server: ServerProcess) -> None:
    page = open_ui(browser, ui_server)
    page.fill("[data-testid=system-prompt]", "Be terse.")
    send(page, "first question")
    wait_done(page)
    with page.expect_request(is_generation) as req:
        send(page, "second question")
    items = [(i["role"], i["data"]) for i in json.loads(req.value.post_data)["input_data"]]
    assert items == [("system_context", "Be terse."), ("user_prompt", "first question"),
                     ("assistant_reply", "first question"), ("user_prompt", "second question")]
    wait_done(page)
    page.context.close()


def _png_file(tmp_path: Path) -> Path:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, format="PNG")
    path = tmp_path / "red.png"
    path.write_bytes(buf.getvalue())
    return path


def test_attach_an_image_for_a_vision_model(browser: Any, ui_server: ServerProcess, tmp_path: Path) -> None:
    page = open_ui(browser, ui_server)
    page.select_option("[data-testid=model-select]", "dummy-vision")
    page.set_input_files("[data-testid=file-input]", str(_png_file(tmp_path)))
    page.wait_for_selector("[data-testid=attachment-chip]")
    with page.expect_request(is_generation) as req:
        send(page, "what colour is this?")
    image_items = [i for i in json.loads(req.value.post_data)["input_data"] if i["type"] == "image"]
    assert len(image_items) == 1 and image_items[0]["mime_type"] == "image/png"
    assert base64.b64decode(image_items[0]["data"]).startswith(b"\x89PNG")
    assert wait_done(page).get_attribute("data-status") == "done"
    # A text-only model is not offered images: no attach button, and a dropped file gets a clear reason.
    page.select_option("[data-testid=model-select]", "dummy-echo")
    page.wait_for_selector("[data-testid=attach-button][aria-label='Attach document']")
    page.set_input_files("[data-testid=file-input]", str(_png_file(tmp_path)))
    assert "“dummy-echo” accepts only documents" in page.inner_text("[data-testid=attach-error]")
    assert page.locator("[data-testid=attachment-chip]").count() == 0
    page.context.close()


def test_generate_an_image_and_see_it(browser: Any, ui_server: ServerProcess) -> None:
    page = open_ui(browser, ui_server)
    page.click("[data-testid=mode-tti]")
    page.fill("[data-testid=param-width]", "96")
    page.fill("[data-testid=param-height]", "64")
    page.press("[data-testid=param-height]", "Tab")
    send(page, "a lighthouse at dusk")
    page.wait_for_selector("[data-testid=generated-image]")
    size = page.evaluate("(() => { const i = document.querySelector('[data-testid=generated-image]'); return [i.naturalWidth, i.naturalHeight]; })()")
    assert size == [96, 64]  # decoded by the browser, at the size asked for
    href = page.get_attribute("[data-testid=download-image]", "href")
    assert href.startswith("data:image/png;base64,")
    with page.expect_download() as download:
        page.click("[data-testid=download-image]")
    assert download.value.suggested_filename.endswith(".png")
    page.screenshot(path=artifact("image-generation.png"))
    page.context.close()


def _wait_playable_audio(page: Any) -> float:
    page.wait_for_selector("[data-testid=audio-player]")
    page.wait_for_function("() => { const a = document.querySelector('[data-testid=audio-player]'); return a && a.readyState >= 1 && a.duration > 0; }")
    return float(page.evaluate("document.querySelector('[data-testid=audio-player]').duration"))


def test_speak_a_reply_and_synthesize_speech(browser: Any, ui_server: ServerProcess) -> None:
    page = open_ui(browser, ui_server)
    send(page, "Read this reply out loud please")
    wait_done(page)
    page.click("[data-testid=speak]")
    assert _wait_playable_audio(page) > 0.1
    page.click("[data-testid=mode-tts]")
    send(page, "A second sentence to speak")
    page.wait_for_selector("[data-testid=message-assistant]:last-of-type [data-testid=audio-player]")
    assert page.locator("[data-testid=audio-player]").count() == 2
    page.screenshot(path=artifact("speech.png"))
    page.context.close()


def test_status_page_shows_a_broken_instance_and_the_server_state(browser: Any, ui_server: ServerProcess) -> None:
    page = open_ui(browser, ui_server)
    page.click("[data-testid=nav-status]")
    error = page.locator("[data-testid=instance-broken] [data-testid=load-error]")
    error.wait_for()
    assert "fail_load" in error.inner_text()
    assert page.locator("[data-testid=instance-dummy] .badge").inner_text() == "active"
    assert page.inner_text("[data-testid=health-status]") == "ok"
    assert page.inner_text("[data-testid=server-version]")
    assert "semaphore" in page.inner_text("[data-testid=resources]") or "Strategy" in page.inner_text("[data-testid=resources]")
    assert "lollms" in page.inner_text("[data-testid=personalities-list]")
    assert "dummy" in page.inner_text("[data-testid=defaults]")
    page.screenshot(path=artifact("status.png"), full_page=True)
    page.context.close()


def test_conversations_persist_rename_export_delete(browser: Any, ui_server: ServerProcess) -> None:
    page = open_ui(browser, ui_server)
    send(page, "remember this conversation")
    wait_done(page)
    page.reload()
    page.wait_for_selector("[data-testid=conversation-item]")
    assert "remember this conversation" in page.inner_text("[data-testid=conversation-item]")
    assert page.locator("[data-testid=message-assistant]").count() == 1
    page.click("[data-testid=conversation-item] [data-testid=rename]")
    page.fill("[data-testid=rename-input]", "Renamed chat")
    page.press("[data-testid=rename-input]", "Enter")
    page.reload()
    page.wait_for_selector("[data-testid=conversation-item]:has-text('Renamed chat')")
    with page.expect_download() as download:
        page.click("[data-testid=conversation-item] [data-testid=export]")
    exported = json.loads(Path(download.value.path()).read_text())
    assert exported["title"] == "Renamed chat"
    assert [m["role"] for m in exported["messages"]] == ["user", "assistant"]
    page.once("dialog", lambda d: d.accept())
    page.click("[data-testid=conversation-item] [data-testid=delete]")
    page.wait_for_selector("[data-testid=conversation-item]", state="detached")
    page.reload()
    page.wait_for_selector("[data-testid=prompt-input]")
    assert page.locator("[data-testid=conversation-item]").count() == 0
    page.context.close()


def test_phone_layout_and_dark_theme(browser: Any, ui_server: ServerProcess) -> None:
    page = open_ui(browser, ui_server, viewport=PHONE)
    assert page.locator("[data-testid=settings-panel]").count() == 0  # closed on small screens
    new_chat_right = "document.querySelector('[data-testid=new-chat]').getBoundingClientRect().right"
    assert page.evaluate(new_chat_right) <= 0  # the sidebar is off-canvas
    send(page, "Hello from a phone sized screen")
    wait_done(page)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "the page scrolls sideways on a phone"
    page.screenshot(path=artifact("chat-phone.png"))
    page.click("[data-testid=open-sidebar]")
    page.wait_for_function(f"() => {new_chat_right} > 100")
    page.click("[data-testid=theme-toggle]")
    theme = page.evaluate("document.documentElement.dataset.theme")
    assert theme in ("dark", "light")
    page.screenshot(path=artifact(f"sidebar-phone-{theme}.png"))
    page.context.close()
    page = open_ui(browser, ui_server)
    page.evaluate("document.documentElement.dataset.theme")
    page.click("[data-testid=theme-toggle]")
    if page.evaluate("document.documentElement.dataset.theme") != "dark":
        page.click("[data-testid=theme-toggle]")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(14, 16, 22)"
    send(page, "Dark theme with code:\n```python\nprint('hi')  # greet\n```")
    wait_done(page)
    assert page.locator(".hljs-built_in, .hljs-string").count() >= 1  # highlighted code
    page.screenshot(path=artifact("chat-dark.png"))
    page.context.close()
