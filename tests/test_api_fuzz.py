"""Property test of the whole HTTP API: schemathesis sends schema-driven (and schema-breaking) requests to every
operation of a real server's /openapi.json; no answer may be a 5xx or break the schema the server declares.

Bounded and deterministic: a few derandomized examples per operation, no shrinking, no example database.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis not installed (dev extra)")
from helpers import API_KEY, ServerProcess, write_config  # noqa: E402
from lollms_server.app import create_app  # noqa: E402
from hypothesis import HealthCheck, Phase, settings  # noqa: E402
from schemathesis.checks import not_a_server_error, response_schema_conformance  # noqa: E402

pytestmark = pytest.mark.e2e

# Names that exist on the fuzzed server: path parameters use them half of the time, so operations get past 404
KNOWN_NAMES = {
    "binding_instance_name": ["dummy", "vision", "imager"],
    "name": ["lollms", "calculator"],
    "model_id": ["dummy", "vision/dummy-vision", "personality:lollms"],
}
CHECKS = [not_a_server_error, response_schema_conformance]
FUZZ_SETTINGS = settings(
    max_examples=6, derandomize=True, database=None, deadline=None, phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    cfg = tmp_path_factory.mktemp("fuzz") / "cfg"
    write_config(
        cfg,
        {
            "dummy": ("dummy_binding", {}),
            "vision": ("dummy_binding", {"default_model": "dummy-vision"}),
            "imager": ("dummy_binding", {"mode": "image"}),
            "audio": ("dummy_binding", {"mode": "audio"}),
        },
        defaults={"ttt_binding": "dummy", "tti_binding": "imager", "i2i_binding": "imager", "tts_binding": "audio"},
    )
    with ServerProcess(cfg) as srv:
        yield srv


def _openapi_document() -> dict[str, Any]:
    """The document the server serves at /openapi.json (it does not depend on the instances configured)."""
    with tempfile.TemporaryDirectory() as tmp:
        write_config(Path(tmp) / "cfg")
        return create_app(Path(tmp) / "cfg").openapi()


schema = schemathesis.openapi.from_dict(_openapi_document())


def _use_known_names(case: Any) -> None:
    for key, names in KNOWN_NAMES.items():
        value = (case.path_parameters or {}).get(key)
        if isinstance(value, str) and len(value) % 2 == 0:  # deterministic: derived from the drawn value
            case.path_parameters[key] = names[len(value) // 2 % len(names)]


def _no_server_error(case: Any, fuzz_server: ServerProcess, headers: dict[str, str]) -> None:
    _use_known_names(case)
    response = case.call_and_validate(base_url=fuzz_server.base_url, headers=headers, checks=CHECKS, timeout=30)
    assert response.status_code < 500 or response.status_code == 501, (response.status_code, response.text[:500])


@schema.parametrize()
@FUZZ_SETTINGS
def test_no_server_error_with_key(case: Any, fuzz_server: ServerProcess) -> None:
    _no_server_error(case, fuzz_server, {"X-API-Key": API_KEY})


@schema.parametrize()
@settings(FUZZ_SETTINGS, max_examples=2)
def test_no_server_error_without_key(case: Any, fuzz_server: ServerProcess) -> None:
    _no_server_error(case, fuzz_server, {})


def test_fuzzed_server_logged_no_internal_error(fuzz_server: ServerProcess) -> None:
    """Runs after the property tests in this module: the server log holds no unexpected-error entry."""
    log = fuzz_server.log()
    assert "unexpected error" not in log and "Traceback" not in log, log[-3000:]
