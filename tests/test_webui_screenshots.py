"""Screenshots of the main views (connect, chat with settings, status) in light and dark themes at desktop and
phone sizes, compared with reference images committed in tests/webui_references/ (small tolerance).

Deterministic by construction: a fixed conversation is put in localStorage, fonts are pinned to DejaVu (Debian's
fonts-dejavu-core, installed by scripts/install_test_deps.sh), animations, transitions, carets and scrollbars are
off, and parts that depend on the zoo's contents or the version (personality grid, function list, binding
types, version string) are masked. To regenerate the references after a deliberate visual change:

    LOLLMS_UPDATE_WEBUI_REFERENCES=1 pytest tests/test_webui_screenshots.py
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from helpers import API_KEY, ServerProcess, write_config
from webui_support import artifact, ensure_built, launched_chromium

pytestmark = pytest.mark.e2e

REFERENCES = Path(__file__).parent / "webui_references"
UPDATE = os.environ.get("LOLLMS_UPDATE_WEBUI_REFERENCES") == "1"
SIZES = {"desktop": {"width": 1280, "height": 820}, "phone": {"width": 390, "height": 844}}
CHANNEL_TOLERANCE = 48  # a pixel differs when one channel moves more than this (anti-aliasing noise stays below)
MAX_DIFFERENT = 0.006  # at most 0.6 % of the pixels may differ

PINNED_STYLE = """
*, *::before, *::after { font-family: "DejaVu Sans", sans-serif !important; animation: none !important;
  transition: none !important; caret-color: transparent !important; }
code, pre, code *, pre * { font-family: "DejaVu Sans Mono", monospace !important; }
::-webkit-scrollbar { display: none !important; }
* { scrollbar-width: none !important; }
"""

REPLY = """## Lighthouses

A lighthouse marks **dangerous coasts** and safe entries to harbours.

- Fresnel lenses focus the light
- Each light has its own *rhythm*

| Name | Height |
|---|---|
| Eddystone | 49 m |
| Cordouan | 68 m |

```python
def flashes(period: float) -> int:
    return int(60 / period)  # per minute
```
"""

CONVERSATION = {
    "id": "fixed-1", "title": "Lighthouses of the Atlantic coast", "createdAt": 1_700_000_000_000, "updatedAt": 1_700_000_100_000,
    "titleSource": "user", "leafId": "a2",
    "messages": [
        {"id": "u1", "role": "user", "kind": "ttt", "content": "Tell me about lighthouses, with a table and some code.",
         "createdAt": 1_700_000_000_000, "parentId": None},
        {"id": "a1", "role": "assistant", "kind": "ttt", "content": "An older answer.", "status": "done",
         "createdAt": 1_700_000_001_000, "parentId": "u1"},
        {"id": "a2", "role": "assistant", "kind": "ttt", "content": REPLY, "status": "done", "createdAt": 1_700_000_002_000,
         "parentId": "u1", "binding": "dummy", "model": "dummy-echo", "durationS": 1.25, "tokensPerSecond": 84.2, "firstTokenS": 0.02,
         "usage": {"prompt_tokens": 12, "completion_tokens": 96},
         "toolCalls": [{"id": "c1", "name": "math_tools.evaluate", "arguments": {"expression": "60/5"}, "result": 12, "error": None,
                        "status": "result"}]},
    ],
}
OTHER = {"id": "fixed-0", "title": "Image of a red square", "createdAt": 1_690_000_000_000, "updatedAt": 1_690_000_000_000,
         "titleSource": "user", "messages": []}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    ensure_built()
    cfg = tmp_path_factory.mktemp("shots") / "cfg"
    write_config(cfg, {"dummy": ("dummy_binding", {})}, defaults={"ttt_binding": "dummy", "tti_binding": "dummy"},
                 main={"webui": {"enable_ui": True}})
    with ServerProcess(cfg) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched_chromium() as b:
        yield b


def pinned_page(browser: Any, srv: ServerProcess, theme: str, size: str, connected: bool) -> Any:
    context = browser.new_context(viewport=SIZES[size], device_scale_factor=1, bypass_csp=True, reduced_motion="reduce",
                                  color_scheme=theme, locale="en-US", timezone_id="UTC")
    context.set_default_timeout(30_000)
    settings = {"theme": theme, "apiKey": API_KEY if connected else ""}
    conversations = [CONVERSATION, OTHER] if connected else []
    context.add_init_script(
        f"localStorage.setItem('lollms.settings.v1', {json.dumps(json.dumps(settings))});"
        f"localStorage.setItem('lollms.conversations.v1', {json.dumps(json.dumps(conversations))});"
    )
    page = context.new_page()
    page.goto(srv.base_url + "/")
    page.wait_for_selector("[data-testid=prompt-input]" if connected else "[data-testid=connect-form]")
    page.add_style_tag(content=PINNED_STYLE)
    page.evaluate("document.fonts.ready")
    page.wait_for_load_state("networkidle")
    return page


def compare(page: Any, name: str, mask: list[Any]) -> None:
    from PIL import Image, ImageChops

    page.wait_for_timeout(150)
    shot = page.screenshot(animations="disabled", caret="hide", mask=mask, mask_color="#888888")
    Path(artifact(f"{name}.png")).write_bytes(shot)
    reference = REFERENCES / f"{name}.png"
    if UPDATE:
        REFERENCES.mkdir(exist_ok=True)
        reference.write_bytes(shot)
        return
    assert reference.is_file(), f"no reference image {reference.name}: generate it with LOLLMS_UPDATE_WEBUI_REFERENCES=1"
    got = Image.open(io.BytesIO(shot)).convert("RGB")
    want = Image.open(reference).convert("RGB")
    assert got.size == want.size, f"{name}: size {got.size} differs from the reference {want.size}"
    diff = ImageChops.difference(got, want)
    channels = diff.split()
    worst = channels[0]
    for c in channels[1:]:
        worst = ImageChops.lighter(worst, c)
    different = sum(worst.point(lambda v: 255 if v > CHANNEL_TOLERANCE else 0).histogram()[255:])
    share = different / (got.size[0] * got.size[1])
    if share > MAX_DIFFERENT:
        worst.point(lambda v: 255 if v > CHANNEL_TOLERANCE else 0).save(artifact(f"{name}-diff.png"))
    assert share <= MAX_DIFFERENT, f"{name}: {share:.2%} of the pixels differ from the reference (see test-artifacts/webui/{name}-diff.png)"


@pytest.mark.parametrize("size", ["desktop", "phone"])
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_connect_screen_looks_like_the_reference(browser: Any, server: ServerProcess, theme: str, size: str) -> None:
    page = pinned_page(browser, server, theme, size, connected=False)
    page.wait_for_selector("[data-testid=config-path]:has-text('main_config')")
    compare(page, f"connect-{theme}-{size}", mask=[page.locator("[data-testid=config-path]")])
    page.context.close()


@pytest.mark.parametrize("size", ["desktop", "phone"])
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_chat_view_looks_like_the_reference(browser: Any, server: ServerProcess, theme: str, size: str) -> None:
    page = pinned_page(browser, server, theme, size, connected=True)
    page.wait_for_selector("[data-testid=tool-step]")
    page.wait_for_selector(".hljs-keyword")
    mask = [page.locator(".personas"), page.locator("[data-testid=tools-section]")]
    compare(page, f"chat-{theme}-{size}", mask=mask)
    if size == "phone":
        page.click("[data-testid=open-sidebar]")
        page.wait_for_timeout(50)
        compare(page, f"sidebar-{theme}-{size}", mask=[])
    page.context.close()


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_status_view_looks_like_the_reference(browser: Any, server: ServerProcess, theme: str) -> None:
    page = pinned_page(browser, server, theme, "desktop", connected=True)
    page.click("[data-testid=nav-status]")
    page.wait_for_selector("[data-testid=resources]")
    page.wait_for_selector("[data-testid=instance-dummy]")
    mask = [page.locator("[data-testid=server-version]"), page.locator(".types"), page.locator("[data-testid=personalities-list]"),
            page.locator("[data-testid=functions-list]")]
    compare(page, f"status-{theme}-desktop", mask=mask)
    page.context.close()
