"""The web UI's daily-use workflows in real Chromium against a real lollms-server process: settings kept per
conversation, a composer that offers only what the binding and model accept, branches (edit any prompt,
regenerate any reply), model-written titles, search and import, the connect screen and the ``?key=`` link."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from helpers import API_KEY, ServerProcess, write_config
from webui_support import artifact, ensure_built, is_generation, launched_chromium
from lollms_server.api.security_headers import UI_CSP

pytestmark = pytest.mark.e2e

DESKTOP = {"width": 1280, "height": 820}
TABLE_PROMPT = "| **one** | two |\n|---|---|\n| three four | five six seven eight nine ten |"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Dummy instances; a default only for chat (image mode must still work on its first try)."""
    ensure_built()
    cfg = tmp_path_factory.mktemp("workflows") / "cfg"
    write_config(
        cfg,
        {
            "dummy": ("dummy_binding", {"stream_chunk_delay": 0.01}),
            "painter": ("dummy_binding", {"mode": "image"}),
            "slow": ("dummy_binding", {"delay": 3.0, "stream_chunk_delay": 0.05}),
            "tooler": ("dummy_binding", {"mode": "tools"}),
        },
        defaults={"ttt_binding": "dummy"},
        main={"webui": {"enable_ui": True}},
    )
    with ServerProcess(cfg) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched_chromium() as b:
        yield b


def open_ui(browser: Any, srv: ServerProcess, path: str = "/", key: str | None = API_KEY) -> Any:
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(srv.base_url + path)
    if key is not None:
        page.wait_for_selector("[data-testid=connect-form]")
        page.fill("input[name=api-key]", key)
        page.click("[data-testid=connect-button]")
        page.wait_for_selector("[data-testid=prompt-input]")
    return page


def send(page: Any, text: str) -> None:
    page.fill("[data-testid=prompt-input]", text)
    page.press("[data-testid=prompt-input]", "Enter")


def wait_done(page: Any) -> Any:
    page.wait_for_selector("[data-testid=message-assistant]:last-of-type:not([data-status=streaming])")
    return page.locator("[data-testid=message-assistant]").last


def selected_mode(page: Any) -> str:
    return page.get_attribute("[role=tab][aria-selected=true]", "data-testid")


def test_mode_binding_and_model_are_kept_per_conversation(browser: Any, server: ServerProcess) -> None:
    page = open_ui(browser, server)
    send(page, "a chat conversation")
    wait_done(page)
    page.click("[data-testid=new-chat]")
    page.click("[data-testid=mode-tti]")
    page.select_option("[data-testid=binding-select-tti]", "painter")
    send(page, "a lighthouse")
    page.wait_for_selector("[data-testid=generated-image]")
    # Back to the chat conversation: it is still in chat mode, with its own binding choice.
    page.click("[data-testid=conversation-item]:has-text('a chat conversation') .title")
    assert selected_mode(page) == "mode-ttt"
    page.select_option("[data-testid=model-select]", "dummy-vision")
    page.click("[data-testid=conversation-item]:has-text('lighthouse') .title")
    assert selected_mode(page) == "mode-tti"
    assert page.input_value("[data-testid=binding-select-tti]") == "painter"
    page.click("[data-testid=conversation-item]:has-text('a chat conversation') .title")
    assert page.input_value("[data-testid=model-select]") == "dummy-vision"
    # A new chat starts from the user's defaults (the server's choices until the user saves their own).
    page.click("[data-testid=new-chat]")
    assert selected_mode(page) == "mode-ttt"
    assert page.input_value("[data-testid=model-select]") == ""
    page.select_option("[data-testid=binding-select-ttt]", "slow")
    page.click("[data-testid=save-defaults]")
    page.click("[data-testid=conversation-item]:has-text('a chat conversation') .title")
    assert page.input_value("[data-testid=binding-select-ttt]") == ""  # saving defaults changed no other chat
    page.click("[data-testid=new-chat]")
    assert page.input_value("[data-testid=binding-select-ttt]") == "slow"
    page.reload()
    page.wait_for_selector("[data-testid=prompt-input]")
    page.click("[data-testid=conversation-item]:has-text('lighthouse') .title")
    assert selected_mode(page) == "mode-tti"  # kept across reloads
    page.context.close()


def test_parameter_fields_show_the_servers_defaults(browser: Any, server: ServerProcess) -> None:
    listing = httpx.get(server.base_url + "/api/v1/list_bindings", headers={"X-API-Key": API_KEY}).json()
    declared = {p["name"]: p for p in listing["binding_types"]["dummy_binding"].get("parameters") or []}
    page = open_ui(browser, server)
    placeholder = page.get_attribute("[data-testid=param-max_tokens]", "placeholder")
    if declared:  # the server declares its parameters: the field shows its real default
        expected = declared["max_tokens"]["default"]
        assert placeholder == (str(expected) if expected is not None else "server default")
    assert placeholder
    page.fill("[data-testid=param-max_tokens]", "3")
    page.press("[data-testid=param-max_tokens]", "Tab")
    with page.expect_request(is_generation) as req:
        send(page, "one two three four five six")
    assert json.loads(req.value.post_data)["parameters"] == {"max_tokens": 3}
    assert wait_done(page).locator("[data-testid=reply-text]").inner_text() == "one two three"
    page.context.close()


def test_image_mode_works_on_the_first_try_without_a_server_default(browser: Any, server: ServerProcess) -> None:
    page = open_ui(browser, server)
    page.click("[data-testid=mode-tti]")
    assert "none set" not in page.inner_text("[data-testid=binding-select-tti]")
    send(page, "a red square")
    page.wait_for_selector("[data-testid=generated-image]")
    assert page.locator("[data-testid=reply-error]").count() == 0
    page.context.close()


def _png(tmp_path: Path) -> Path:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (20, 160, 60)).save(buf, format="PNG")
    path = tmp_path / "green.png"
    path.write_bytes(buf.getvalue())
    return path


def test_attachments_are_offered_only_where_the_model_accepts_them(browser: Any, server: ServerProcess, tmp_path: Path) -> None:
    page = open_ui(browser, server)
    # The default model of the dummy instance reads text only: documents, not images; an image gets a human message.
    page.wait_for_selector("[data-testid=attach-button][aria-label='Attach document']")
    page.set_input_files("[data-testid=file-input]", str(_png(tmp_path)))
    error = page.inner_text("[data-testid=attach-error]")
    assert "green.png cannot be attached here" in error and "accepts only documents" in error and "input_data" not in error
    assert page.locator("[data-testid=attachment-chip]").count() == 0
    # A vision model: images are offered and sent.
    page.select_option("[data-testid=model-select]", "dummy-vision")
    page.wait_for_selector("[data-testid=attach-button]")
    assert page.get_attribute("[data-testid=attach-button]", "aria-label") == "Attach image or document"
    page.set_input_files("[data-testid=file-input]", str(_png(tmp_path)))
    page.wait_for_selector("[data-testid=attachment-chip]")
    # Switching back to a text-only model with the image attached: sending is blocked with a clear reason.
    page.select_option("[data-testid=model-select]", "dummy-echo")
    page.fill("[data-testid=prompt-input]", "what is it?")
    assert "cannot read images" in page.inner_text("[data-testid=attach-refused]")
    assert page.is_disabled("[data-testid=send-button]")
    page.select_option("[data-testid=model-select]", "dummy-vision")
    send(page, "what is it?")
    assert wait_done(page).get_attribute("data-status") == "done"
    # Speech synthesis takes no attachment at all.
    page.click("[data-testid=mode-tts]")
    assert page.locator("[data-testid=attach-button]").count() == 0
    page.context.close()


def test_edit_any_prompt_and_regenerate_any_reply_as_branches(browser: Any, server: ServerProcess) -> None:
    page = open_ui(browser, server)
    send(page, "first question")
    wait_done(page)
    send(page, "second question")
    wait_done(page)
    # Regenerate the FIRST reply (not the last): a second version appears, the later turns stay on version 1.
    page.locator("[data-testid=message-assistant]").first.locator("[data-testid=retry]").click()
    wait_done(page)
    first_reply = page.locator("[data-testid=message-assistant]").first
    assert first_reply.locator("[data-testid=branch-label]").inner_text() == "2 / 2"
    assert page.locator("[data-testid=message-user]").count() == 1  # the new branch has no second turn yet
    first_reply.locator("[data-testid=branch-prev]").click()
    assert page.locator("[data-testid=message-user]").count() == 2  # back on the original branch
    assert "second question" in page.inner_text("[data-testid=messages]")
    # Edit the first prompt: the edited version is a branch; the original keeps its replies.
    page.locator("[data-testid=message-user]").first.locator("[data-testid=edit]").click()
    page.fill("[data-testid=edit-input]", "edited first question")
    page.click("[data-testid=edit-save]")
    wait_done(page)
    user = page.locator("[data-testid=message-user]").first
    assert user.locator("[data-testid=branch-label]").inner_text() == "2 / 2"
    assert page.locator("[data-testid=reply-text]").last.inner_text() == "edited first question"
    user.locator("[data-testid=branch-prev]").click()  # the original prompt, with its newest reply (the regenerated one)
    assert page.locator("[data-testid=message-user] .plain").first.inner_text() == "first question"
    assert page.locator("[data-testid=message-assistant]").first.locator("[data-testid=branch-label]").inner_text() == "2 / 2"
    page.locator("[data-testid=message-assistant]").first.locator("[data-testid=branch-prev]").click()
    assert page.locator("[data-testid=message-user]").count() == 2
    page.screenshot(path=artifact("branches.png"))
    page.reload()  # branches and the branch on screen are kept
    page.wait_for_selector("[data-testid=message-user]")
    assert page.locator("[data-testid=message-user]").count() == 2
    page.locator("[data-testid=message-user]").first.locator("[data-testid=branch-next]").click()
    assert page.locator("[data-testid=message-user] .plain").first.inner_text() == "edited first question"
    page.context.close()


def test_title_is_written_by_the_model_in_the_background(browser: Any, server: ServerProcess) -> None:
    page = open_ui(browser, server)
    requests: list[dict[str, Any]] = []
    page.on("request", lambda r: requests.append(json.loads(r.post_data)) if r.url.endswith("/api/v1/generate") else None)
    send(page, TABLE_PROMPT)
    wait_done(page)
    # The first message gives a readable title at once; the model's (at most 8 words) replaces it.
    page.wait_for_function("() => document.querySelector('[data-testid=title]').textContent === 'one two three four five six seven eight'")
    title_requests = [r for r in requests if r["input_data"][0]["role"] == "system_context"]
    assert len(title_requests) == 1 and "title" in title_requests[0]["input_data"][0]["data"]
    assert title_requests[0]["stream"] is False and title_requests[0]["input_data"][1]["data"] == TABLE_PROMPT
    item = page.inner_text("[data-testid=conversation-item] [data-testid=conversation-title]")
    assert item == "one two three four five six seven eight"
    page.context.close()


def test_title_writing_can_be_cancelled(browser: Any, server: ServerProcess) -> None:
    page = open_ui(browser, server)
    page.select_option("[data-testid=binding-select-ttt]", "slow")
    send(page, "tell me about lighthouses on rocky northern coasts at night")
    wait_done(page)
    first_message_title = "tell me about lighthouses on rocky northern coa…"
    assert page.inner_text("[data-testid=title]") == first_message_title
    page.click("[data-testid=title-pending]")  # the slow instance takes seconds to answer the title request
    page.wait_for_selector("[data-testid=title-pending]", state="detached")
    page.wait_for_timeout(4000)
    assert page.inner_text("[data-testid=title]") == first_message_title
    page.context.close()


CHATGPT_EXPORT = [{
    "title": "Zebra facts", "create_time": 1700000000.0, "update_time": 1700000100.0, "current_node": "c",
    "mapping": {
        "root": {"id": "root", "message": None, "parent": None, "children": ["s"]},
        "s": {"id": "s", "parent": "root", "children": ["a"], "message": {
            "id": "s", "author": {"role": "system"}, "content": {"content_type": "text", "parts": [""]}, "create_time": None}},
        "a": {"id": "a", "parent": "s", "children": ["b", "b2"], "message": {
            "id": "a", "author": {"role": "user"}, "content": {"content_type": "text", "parts": ["How many stripes has a zebra?"]},
            "create_time": 1700000001.0}},
        "b": {"id": "b", "parent": "a", "children": [], "message": {
            "id": "b", "author": {"role": "assistant"}, "content": {"content_type": "text", "parts": ["Many."]}, "create_time": 1700000002.0}},
        "b2": {"id": "b2", "parent": "a", "children": ["c"], "message": {
            "id": "b2", "author": {"role": "assistant"}, "content": {"content_type": "text", "parts": ["About forty."]},
            "create_time": 1700000003.0}},
        "c": {"id": "c", "parent": "b2", "children": [], "message": {
            "id": "c", "author": {"role": "user"}, "content": {"content_type": "text", "parts": ["Thanks!"]}, "create_time": 1700000004.0}},
    },
}]

OPEN_WEBUI_EXPORT = [{
    "id": "x1", "title": "Okapi questions", "created_at": 1700000000, "updated_at": 1700000500,
    "chat": {
        "title": "Okapi questions", "models": ["llama3"],
        "history": {"currentId": "m2", "messages": {
            "m1": {"id": "m1", "parentId": None, "childrenIds": ["m2"], "role": "user", "content": "Is an okapi a giraffe?", "timestamp": 1700000001},
            "m2": {"id": "m2", "parentId": "m1", "childrenIds": [], "role": "assistant", "content": "It is its closest relative.",
                   "timestamp": 1700000002, "model": "llama3"},
        }},
        "messages": [],
    },
}]


def test_search_and_import_of_this_ui_chatgpt_and_open_webui_exports(browser: Any, server: ServerProcess, tmp_path: Path) -> None:
    page = open_ui(browser, server)
    send(page, "the capybara is the largest rodent")
    wait_done(page)
    with page.expect_download() as download:
        page.click("[data-testid=conversation-item] [data-testid=export]")
    own = Path(download.value.path()).read_text()
    files = {"own.json": own, "conversations.json": json.dumps(CHATGPT_EXPORT), "owui.json": json.dumps(OPEN_WEBUI_EXPORT),
             "bad.json": json.dumps({"hello": "world"})}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    page.set_input_files("[data-testid=import-input]", str(tmp_path / "bad.json"))
    assert "No conversation found" in page.inner_text("[data-testid=import-note]")
    for name in ("own.json", "conversations.json", "owui.json"):
        page.set_input_files("[data-testid=import-input]", str(tmp_path / name))
        page.wait_for_selector("[data-testid=import-note]:has-text('Imported 1 conversation')")
    assert page.locator("[data-testid=conversation-item]").count() == 4
    # ChatGPT: the branch on screen is the export's current node; the other reply is a version beside it.
    page.click("[data-testid=conversation-item]:has-text('Zebra facts') .title")
    assert page.locator("[data-testid=message-user]").count() == 2
    assert page.locator("[data-testid=reply-text]").first.inner_text() == "About forty."
    assert page.locator("[data-testid=message-assistant]").first.locator("[data-testid=branch-label]").inner_text() == "2 / 2"
    page.click("[data-testid=conversation-item]:has-text('Okapi questions') .title")
    assert page.locator("[data-testid=reply-text]").first.inner_text() == "It is its closest relative."
    # Search: titles and message content.
    page.fill("[data-testid=search-input]", "okapi")
    assert page.locator("[data-testid=conversation-item]").count() == 1
    page.fill("[data-testid=search-input]", "forty")
    assert page.locator("[data-testid=conversation-item]").count() == 1
    assert "About forty" in page.inner_text("[data-testid=search-snippet]")
    page.fill("[data-testid=search-input]", "capybara rodent")
    assert page.locator("[data-testid=conversation-item]").count() == 2  # the chat and its re-imported copy
    page.fill("[data-testid=search-input]", "no such words here")
    page.wait_for_selector("[data-testid=search-empty]")
    page.context.close()


def test_connect_screen_names_the_config_file_and_a_key_link_connects(browser: Any, server: ServerProcess) -> None:
    info = httpx.get(server.base_url + "/api/v1/server_info").json()  # public, like /health
    assert info["config_file"].endswith("cfg/main_config.yaml") and not info["config_file"].startswith("/")
    assert str(server.config_dir) not in json.dumps(info)
    page = open_ui(browser, server, key=None)
    page.wait_for_selector("[data-testid=connect-form]")
    page.wait_for_selector("[data-testid=config-path]:has-text('main_config.yaml')")
    assert page.inner_text("[data-testid=config-path]") == info["config_file"]
    page.context.close()
    # A link with the key connects at once, and the key leaves the address bar.
    page = open_ui(browser, server, path=f"/?key={API_KEY}", key=None)
    page.wait_for_selector("[data-testid=prompt-input]")
    assert "key=" not in page.url
    assert API_KEY not in page.evaluate("window.location.href + document.title")
    page.context.close()
    page = open_ui(browser, server, path="/?key=wrong-key", key=None)
    page.wait_for_selector("[data-testid=connect-error]")
    assert "refused" in page.inner_text("[data-testid=connect-error]")
    assert "key=" not in page.url
    page.context.close()


def test_serve_prints_a_key_link_only_on_an_interactive_terminal(server: ServerProcess, tmp_path: Path) -> None:
    import sys

    import pexpect

    from helpers import free_port

    # The module's server writes its output to a file: the link is there, without the key.
    log = server.log()
    assert re.search(r"web UI: http://127\.0\.0\.1:\d+/\s", log), log
    assert API_KEY not in log
    port = free_port()
    child = pexpect.spawn(sys.executable, ["-m", "lollms_server", "serve", "--config-dir", str(server.config_dir), "--port", str(port)],
                          encoding="utf-8", timeout=60)
    try:
        child.expect(r"web UI: (http://\S+)")
        link = child.match.group(1)
        assert link == f"http://127.0.0.1:{port}/?key={API_KEY}"
    finally:
        child.sendintr()  # Ctrl+C, as a person would
        try:
            child.expect(pexpect.EOF, timeout=20)
        except pexpect.TIMEOUT:
            child.terminate(force=True)
        child.close()


def test_display_path_never_shows_an_absolute_host_path(tmp_path: Path) -> None:
    from lollms_server.core.paths import PROJECT_ROOT, display_path

    assert display_path(PROJECT_ROOT / "lollms_configs" / "main_config.yaml") == "lollms_configs/main_config.yaml"
    outside = tmp_path / "deep" / "cfg" / "main_config.toml"
    assert display_path(outside) == "…/cfg/main_config.toml"


@pytest.mark.parametrize("streaming", [True, False])
def test_tool_calls_and_results_show_as_collapsed_steps(browser: Any, server: ServerProcess, streaming: bool) -> None:
    page = open_ui(browser, server)
    page.select_option("[data-testid=binding-select-ttt]", "tooler")
    if not streaming:
        page.uncheck("text=Stream replies")
    page.check("[data-testid='tool-math_tools.evaluate']")
    with page.expect_request(is_generation) as req:
        send(page, 'Compute this: {"expression": "6*7"}')
    assert json.loads(req.value.post_data)["functions"] == ["math_tools.evaluate"]
    reply = wait_done(page)
    assert reply.locator("[data-testid=reply-text]").inner_text() == "tool results: 42"
    step = reply.locator("[data-testid=tool-step]")
    assert step.count() == 1 and step.get_attribute("data-status") == "result"
    assert step.get_attribute("open") is None  # collapsed by default
    assert "math_tools.evaluate" in step.locator("summary").inner_text()
    assert not step.locator("[data-testid=tool-step-arguments]").is_visible()
    step.locator("summary").click()
    assert json.loads(step.locator("[data-testid=tool-step-arguments]").inner_text()) == {"expression": "6*7"}
    assert step.locator("[data-testid=tool-step-result]").inner_text() == "42"
    assert "function call" not in reply.inner_text() and '"status"' not in reply.inner_text()  # no raw JSON line
    page.screenshot(path=artifact(f"tool-steps-{'stream' if streaming else 'once'}.png"))
    page.context.close()


WATCH_CSP = "window.__cspViolations = []; document.addEventListener('securitypolicyviolation', e => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"


def test_latex_is_typeset_with_bundled_katex_under_a_strict_csp(browser: Any, server: ServerProcess) -> None:
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(30_000)
    context.add_init_script(WATCH_CSP)
    hosts: set[str] = set()
    context.on("request", lambda request: hosts.add(request.url.split("/")[2]))
    page = context.new_page()
    document = page.goto(server.base_url + "/")
    assert document is not None and document.headers["content-security-policy"] == UI_CSP  # the server's own policy
    page.fill("input[name=api-key]", API_KEY)
    page.click("[data-testid=connect-button]")
    page.wait_for_selector("[data-testid=prompt-input]")
    send(page, "Euler: $e^{i\\pi} + 1 = 0$, costs $5 and $6.\n\n$$\\int_0^1 x^2\\,dx = \\frac{1}{3}$$")
    reply = wait_done(page)
    reply.locator(".katex-display").wait_for()
    assert reply.locator(".katex").count() == 2  # one inline, one display; "$5 and $6" stays text
    assert "costs $5 and $6" in reply.inner_text()
    assert "π" in reply.locator(".katex-mathml math").first.text_content()  # MathML for screen readers
    # KaTeX's layout styles reach the elements through the CSSOM, and its own fonts load from this server.
    assert page.evaluate("[...document.querySelectorAll('.katex [data-style]')].every(e => e.style.cssText !== '')")
    assert page.evaluate("document.querySelectorAll('.katex [style]').length") > 10
    page.wait_for_function("() => document.fonts.check('16px KaTeX_Main')")
    assert page.evaluate("window.__cspViolations") == []
    assert hosts == {server.base_url.split("/")[2]}, f"the UI fetched from other hosts: {hosts}"
    page.screenshot(path=artifact("latex.png"))
    context.close()


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF whose text layer says ``text`` (Helvetica), with a correct cross-reference table."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def last_generate(page: Any, action: Any) -> dict[str, Any]:
    with page.expect_request(is_generation) as req:
        action()
    return json.loads(req.value.post_data)


def test_documents_go_in_the_context_when_they_fit_and_the_ui_says_when_not(browser: Any, server: ServerProcess, tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("# Notes\n\nThe launch code of the project is **blue-falcon-17**.\n")
    paper = tmp_path / "paper.pdf"
    paper.write_bytes(minimal_pdf("The secret word is periwinkle."))
    page = open_ui(browser, server)
    assert page.get_attribute("[data-testid=attach-button]", "aria-label") == "Attach document"
    page.set_input_files("[data-testid=file-input]", [str(notes), str(paper)])
    page.wait_for_selector("[data-testid=document-chip]:has-text('paper.pdf')[data-status=ready]")
    page.wait_for_selector("[data-testid=document-chip]:has-text('notes.md')[data-status=ready]")
    body = last_generate(page, lambda: send(page, "What is the launch code?"))
    context = body["input_data"][0]
    assert context["role"] == "system_context" and "blue-falcon-17" in context["data"] and "periwinkle" in context["data"]
    assert body["input_data"][-1] == {"type": "text", "role": "user_prompt", "data": "What is the launch code?"}
    reply = wait_done(page)
    assert "notes.md" in reply.locator("[data-testid=sources]").inner_text()
    assert reply.locator("[data-testid=context-note]").count() == 0
    # A document far larger than the model's context (4096 tokens): said before sending, and on the reply.
    big = tmp_path / "big.txt"
    big.write_text(" ".join(f"sentence{i} about nothing in particular." for i in range(6000)))
    page.set_input_files("[data-testid=file-input]", str(big))
    page.wait_for_selector("[data-testid=document-chip]:has-text('big.txt')[data-status=ready]")
    assert "do not fit" in page.inner_text("[data-testid=documents-too-big]")
    body = last_generate(page, lambda: send(page, "Summarise big.txt"))
    assert len(body["input_data"][0]["data"]) < 4096 * 4
    reply = wait_done(page)
    assert "big.txt (only the first" in reply.locator("[data-testid=context-note]").inner_text()
    page.locator("[data-testid=document-chip]:has-text('big.txt') [data-testid=remove-document]").click()
    page.wait_for_selector("[data-testid=documents-too-big]", state="detached")
    page.screenshot(path=artifact("documents.png"))
    page.context.close()


TOPICS = {
    "zebras": "Zebras are African equines with distinctive black-and-white striped coats. They live in herds on the savanna.",
    "volcanoes": "A volcano is a rupture in the crust of a planet where lava, volcanic ash and gases escape from a magma chamber below the surface.",
    "bread": "Bread is a staple food prepared from a dough of flour and water, usually leavened with yeast and baked in an oven.",
    "chess": "Chess is a board game for two players played on a checkered board with sixty-four squares arranged in an eight-by-eight grid.",
    "tides": "Tides are the rise and fall of sea levels caused by the gravitational forces of the Moon and the Sun acting on the oceans.",
    "violins": "The violin is a wooden string instrument in the violin family, played with a bow strung with horsehair.",
}


@pytest.fixture(scope="module")
def rag_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A chat instance and the shipped offline embedding model as defaults.embedding_binding."""
    ensure_built()
    cfg = tmp_path_factory.mktemp("rag") / "cfg"
    write_config(cfg, {"dummy": ("dummy_binding", {}), "embedder": ("onnx_embedding_binding", {"threads": 1})},
                 defaults={"ttt_binding": "dummy", "embedding_binding": "embedder"}, main={"webui": {"enable_ui": True}})
    with ServerProcess(cfg) as srv:
        yield srv


def test_with_an_embedding_binding_the_nearest_chunks_are_sent_with_their_sources(browser: Any, rag_server: ServerProcess, tmp_path: Path) -> None:
    doc = tmp_path / "encyclopedia.md"
    filler = " ".join("This paragraph only pads the section so that each topic has a chunk of its own." for _ in range(6))
    doc.write_text("\n\n".join(f"## {name}\n\n{text} {filler}" for name, text in TOPICS.items()))
    page = open_ui(browser, rag_server)
    page.set_input_files("[data-testid=file-input]", str(doc))
    page.wait_for_selector("[data-testid=document-chip][data-status=ready]")
    assert "searchable" in page.inner_text("[data-testid=document-chip]")
    body = last_generate(page, lambda: send(page, "Where does lava come from when a volcano erupts?"))
    context = body["input_data"][0]["data"]
    first = context.split("[2]")[0]
    assert "magma chamber" in first, context[:800]  # the nearest chunk comes first
    assert "sixty-four squares" not in context or context.index("sixty-four") > context.index("magma")
    reply = wait_done(page)
    sources = reply.locator("[data-testid=source]")
    assert sources.count() >= 1 and "encyclopedia.md" in sources.first.inner_text()
    page.context.close()


def test_usage_filters_and_extension_panels(browser: Any, server: ServerProcess) -> None:
    page = open_ui(browser, server)
    send(page, "count this request")
    wait_done(page)
    page.wait_for_timeout(500)  # the usage ledger writes in batches
    page.click("[data-testid=nav-extensions]")
    page.wait_for_selector("[data-testid=usage-table]")
    requests = int(page.inner_text("[data-testid=usage-table] tbody tr:last-child td:nth-child(2)"))
    assert requests >= 1
    # A filter can be turned on and off from the page (the server keeps the change).
    toggle = page.locator("[data-testid=filter-toggle-word_limit]")
    before = toggle.is_checked()
    toggle.click()
    page.wait_for_function(f"() => document.querySelector('[data-testid=filter-toggle-word_limit]').checked === {str(not before).lower()}")
    listed = httpx.get(server.base_url + "/api/v1/list_filters", headers={"X-API-Key": API_KEY}).json()["filters"]
    assert next(f for f in listed if f["name"] == "word_limit")["enabled"] is (not before)
    toggle.click()
    # An extension's UI module (served by the server) adds its panel, fetching with the user's key.
    page.wait_for_selector("[data-testid=extension-panel-prompt_library]")
    panel = page.locator("[data-testid=extension-panel-prompt_library]")
    assert panel.locator("h2").text_content() == "Prompt library"
    page.wait_for_timeout(300)
    assert "failed" not in panel.inner_text()  # its fetch of /ext/prompt_library/prompts carried the key
    assert "web_fetch" in page.inner_text("[data-testid=extension-web_fetch]")
    page.screenshot(path=artifact("extensions.png"), full_page=True)
    page.context.close()
