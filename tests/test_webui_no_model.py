"""The status page tells an instance without a usable model ("no model", with the fix) from a working one."""

from __future__ import annotations

import importlib.util
from typing import Iterator

import pytest

from helpers import API_KEY, ServerProcess, write_config
from webui_support import ensure_built, launched_chromium

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("torch", "diffusers", "transformers")),
                       reason="needs the diffusers extra"),
]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    ensure_built()
    root = tmp_path_factory.mktemp("nomodel")
    (root / "models" / "diffusers_models").mkdir(parents=True)
    cfg = root / "cfg"
    write_config(cfg, {"dummy": ("dummy_binding", {}),
                       "pics": ("diffusers_binding", {"models_folder": str(root / "models")})},
                 main={"webui": {"enable_ui": True}})
    with ServerProcess(cfg) as server:
        yield server


def test_status_page_shows_no_model_with_the_fix(srv: ServerProcess) -> None:
    with launched_chromium() as browser:
        context = browser.new_context()
        context.set_default_timeout(30_000)
        page = context.new_page()
        page.goto(srv.base_url + "/")
        page.wait_for_selector("[data-testid=connect-form]")
        page.fill("input[name=api-key]", API_KEY)
        page.click("[data-testid=connect-button]")
        page.wait_for_selector("[data-testid=prompt-input]")
        page.click("[data-testid=nav-status]")
        detail = page.locator("[data-testid=instance-pics] [data-testid=no-model-detail]")
        detail.wait_for()
        assert "save_pretrained" in detail.inner_text()
        assert page.locator("[data-testid=instance-pics] [data-testid=no-model]").inner_text() == "no model"
        assert page.locator("[data-testid=instance-dummy] .badge").inner_text() == "active"
