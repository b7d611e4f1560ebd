"""Web UI quality bars in real Chromium against a real server: an automated accessibility check (axe-core, from
npm, injected by the test) of the main views in both themes, keyboard use, the first-load JavaScript budget of
the built UI, and a long streamed answer that keeps the view smooth and scrolled the way the reader wants."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any, Iterator

import pytest

from helpers import API_KEY, ServerProcess, write_config
from webui_support import WEBUI_DIR, ensure_built, launched_chromium, missing

pytestmark = pytest.mark.e2e

DESKTOP = {"width": 1280, "height": 820}
PHONE = {"width": 390, "height": 844}
FIRST_LOAD_BUDGET_GZIP = 200 * 1024
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    ensure_built()
    cfg = tmp_path_factory.mktemp("quality") / "cfg"
    write_config(
        cfg,
        {"dummy": ("dummy_binding", {"stream_chunk_delay": 0.004}), "thinker": ("dummy_binding", {"mode": "think"})},
        defaults={"ttt_binding": "dummy", "tti_binding": "dummy"},
        main={"webui": {"enable_ui": True}},
    )
    with ServerProcess(cfg) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched_chromium() as b:
        yield b


def axe_script() -> Path:
    path = WEBUI_DIR / "node_modules" / "axe-core" / "axe.min.js"
    if not path.is_file():
        missing("axe-core is not installed: run `npm ci` in webui/")
    return path


def violations(page: Any) -> list[dict[str, Any]]:
    # evaluated by the browser's debugging protocol: a <script> tag would be refused by the UI's CSP
    page.evaluate("(source) => { (0, eval)(source); return typeof axe; }", axe_script().read_text(encoding="utf-8"))
    return page.evaluate(
        """async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}})).violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ': ' + n.failureSummary.split('\\n').slice(1, 2).join(''))}))""",
        AXE_TAGS,
    )


def themed_page(browser: Any, srv: ServerProcess, theme: str, viewport: dict[str, int]) -> Any:
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(30_000)
    context.add_init_script(f"if (!localStorage.getItem('lollms.settings.v1')) localStorage.setItem('lollms.settings.v1', JSON.stringify({{theme: '{theme}'}}))")
    page = context.new_page()
    page.goto(srv.base_url + "/")
    page.wait_for_selector("[data-testid=connect-form]")
    return page


def connect(page: Any) -> None:
    page.fill("input[name=api-key]", API_KEY)
    page.click("[data-testid=connect-button]")
    page.wait_for_selector("[data-testid=prompt-input]")


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_main_views_pass_an_automated_accessibility_check(browser: Any, server: ServerProcess, theme: str) -> None:
    found: dict[str, list[dict[str, Any]]] = {}
    page = themed_page(browser, server, theme, DESKTOP)
    found["connect"] = violations(page)
    connect(page)
    page.select_option("[data-testid=binding-select-ttt]", "thinker")
    page.fill("[data-testid=prompt-input]", "Some **Markdown** with code:\n```python\nprint('hi')\n```")
    page.press("[data-testid=prompt-input]", "Enter")
    page.wait_for_selector("[data-testid=message-assistant]:not([data-status=streaming])")
    page.click("[data-testid=retry]")  # two versions: the branch arrows are checked too
    page.wait_for_selector("[data-testid=branch-label]")
    page.wait_for_selector("[data-testid=message-assistant]:not([data-status=streaming])")
    page.click("[data-testid=thoughts] summary")
    found["chat with settings"] = violations(page)
    page.click("[data-testid=nav-status]")
    page.wait_for_selector("[data-testid=instances-table]")
    found["status"] = violations(page)
    page.context.close()
    page = themed_page(browser, server, theme, PHONE)
    connect(page)
    page.click("[data-testid=open-sidebar]")
    found["phone sidebar"] = violations(page)
    page.context.close()
    report = {view: v for view, v in found.items() if v}
    assert not report, json.dumps(report, indent=1)


def test_every_main_action_is_reachable_with_the_keyboard(browser: Any, server: ServerProcess) -> None:
    page = themed_page(browser, server, "light", DESKTOP)
    page.focus("input[name=api-key]")
    page.keyboard.type(API_KEY)
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-testid=prompt-input]")
    page.keyboard.type("typed without a mouse")
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-testid=message-assistant]:not([data-status=streaming])")
    # Tab through the page: every action control is reached, and each shows a visible focus ring.
    reached: set[str] = set()
    unringed: list[str] = []
    for _ in range(80):
        page.keyboard.press("Tab")
        info = page.evaluate("""() => { const e = document.activeElement; const s = getComputedStyle(e);
            const box = e.closest('[data-focus-ring]'); const b = box ? getComputedStyle(box) : null;
            return {id: e.dataset.testid || e.getAttribute('aria-label') || e.tagName,
                    ring: s.outlineStyle !== 'none' || s.boxShadow !== 'none' || (b !== null && b.boxShadow !== 'none')}; }""")
        reached.add(info["id"])
        if not info["ring"] and info["id"] != "BODY":
            unringed.append(info["id"])
    wanted = {"new-chat", "search-input", "rename", "export", "delete", "import-button", "nav-status", "theme-toggle", "copy-message",
              "retry", "edit", "prompt-input", "mode-ttt", "toggle-settings", "system-prompt", "binding-select-ttt"}
    assert wanted <= reached, f"not reachable with Tab: {sorted(wanted - reached)}"
    assert not unringed, f"no visible focus: {sorted(set(unringed))}"
    # Keyboard-only edit of a prompt: Enter saves, and the edited version is a branch.
    page.focus("[data-testid=message-user] [data-testid=edit]")
    page.keyboard.press("Enter")
    page.keyboard.press("Control+a")
    page.keyboard.type("edited with the keyboard")
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-testid=reply-text]:has-text('edited with the keyboard')")
    page.context.close()


def first_load_scripts(dist: Path) -> list[Path]:
    """The JavaScript index.html loads at once: its module scripts and modulepreload links (lazy chunks excluded)."""
    index = (dist / "index.html").read_text()
    refs = re.findall(r'<script[^>]+src="/([^"]+\.js)"', index) + re.findall(r'<link[^>]+rel="modulepreload"[^>]+href="/([^"]+\.js)"', index)
    return [dist / r for r in refs]


def test_first_load_javascript_is_under_200_kb_gzipped() -> None:
    dist = ensure_built()
    scripts = first_load_scripts(dist)
    assert scripts and all(p.is_file() for p in scripts), scripts
    total = sum(len(gzip.compress(p.read_bytes(), compresslevel=9)) for p in scripts)
    print(f"first load: {len(scripts)} script(s), {total / 1024:.1f} KB gzipped (budget {FIRST_LOAD_BUDGET_GZIP // 1024} KB)")
    assert total < FIRST_LOAD_BUDGET_GZIP, f"{total / 1024:.1f} KB gzipped is over the first-load budget"


LONG_ANSWER = " ".join(f"**w{i}**" if i % 40 == 0 else (f"\n\n- item{i}" if i % 25 == 0 else f"word{i}") for i in range(900))

WATCH_FRAMES = """() => {
  window.__frames = [];
  let last = performance.now();
  const tick = (now) => { window.__frames.push(now - last); last = now; if (window.__frames.length < 100000) requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
}"""


def test_long_streamed_answer_stays_smooth_and_scrolls_as_the_reader_wants(browser: Any, server: ServerProcess) -> None:
    page = themed_page(browser, server, "light", DESKTOP)
    connect(page)
    page.fill("[data-testid=prompt-input]", LONG_ANSWER)
    page.evaluate(WATCH_FRAMES)
    page.press("[data-testid=prompt-input]", "Enter")
    page.wait_for_selector("[data-testid=reply-text]:has-text('word301')")
    gap = "(() => { const s = document.querySelector('[data-testid=messages]'); return s.scrollHeight - s.scrollTop - s.clientHeight; })()"
    # While it streams, the view follows the end of the answer...
    for _ in range(5):
        assert page.evaluate(gap) < 150
        page.wait_for_timeout(150)
    # ...until the reader scrolls up: then it stays where they are.
    page.evaluate("document.querySelector('[data-testid=messages]').scrollTop = 200")
    page.wait_for_timeout(600)
    assert page.evaluate("document.querySelector('[data-testid=messages]').scrollTop") == 200
    assert page.locator("[data-testid=message-assistant][data-status=streaming]").count() == 1, "the answer finished too early to test"
    page.wait_for_selector("[data-testid=message-assistant]:not([data-status=streaming])", timeout=120_000)
    frames: list[float] = page.evaluate("window.__frames.slice(5)")
    frames.sort()
    median, p95 = frames[len(frames) // 2], frames[int(len(frames) * 0.95)]
    long_frames = sum(1 for f in frames if f > 100)
    print(f"streaming frames: {len(frames)}, median {median:.1f} ms, p95 {p95:.1f} ms, >100 ms: {long_frames}")
    assert median < 20, f"median frame {median:.1f} ms: the page does not keep 60 fps while streaming"
    assert long_frames <= len(frames) * 0.02, f"{long_frames} frames over 100 ms"
    assert "word899" in page.inner_text("[data-testid=reply-text]")
    page.context.close()
