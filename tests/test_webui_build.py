"""The web UI build: its unit tests (vitest) pass, and the JavaScript stays within budget."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess

from webui_support import WEBUI_DIR, ensure_built, missing

# Everything, including the chunks loaded only on use (KaTeX for math, pdf.js for PDF documents); the first
# load alone has its own, tighter budget (tests/test_webui_quality.py).
JS_BUDGET_GZIP_BYTES = 400 * 1024


def test_vitest_unit_tests_pass() -> None:
    if shutil.which("npm") is None:
        missing("npm is not installed: cannot run the web UI unit tests")
    if not (WEBUI_DIR / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=WEBUI_DIR, check=True, timeout=600)
    result = subprocess.run(["npm", "test", "--silent"], cwd=WEBUI_DIR, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "CI": "true", "NO_COLOR": "1"})
    assert result.returncode == 0, f"vitest failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
    assert "passed" in result.stdout


def test_built_javascript_is_under_budget() -> None:
    dist = ensure_built()
    scripts = sorted((dist / "assets").glob("*.js"))
    assert scripts, "the build has no JavaScript assets"
    total = sum(len(gzip.compress(p.read_bytes(), compresslevel=9)) for p in scripts)
    print(f"web UI JavaScript: {len(scripts)} files, {total / 1024:.1f} KB gzipped (budget {JS_BUDGET_GZIP_BYTES // 1024} KB)")
    assert total < JS_BUDGET_GZIP_BYTES, f"{total / 1024:.1f} KB gzipped is over the {JS_BUDGET_GZIP_BYTES // 1024} KB budget"
    index = (dist / "index.html").read_text()
    for p in scripts:
        if p.name.startswith("index-"):
            assert f"/assets/{p.name}" in index
