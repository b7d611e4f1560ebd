"""Property test of the whole HTTP API: schemathesis sends schema-driven (and schema-breaking) requests to every
operation of a real server's /openapi.json; no answer may be a 5xx or break the schema the server declares.

The server runs the real bindings: dummy, llama.cpp on the shipped SmolLM2 (the default text instance) and
openai_binding talking to a local fake of the OpenAI API. Bounded and deterministic: a few derandomized
examples per operation, no shrinking, no example database; a small context keeps every generation short.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis not installed (dev extra)")
from fakes.openai_fake import FakeOpenAI  # noqa: E402
from helpers import API_KEY, ServerProcess, write_config  # noqa: E402
from remote_common import running  # noqa: E402
from lollms_server.app import create_app  # noqa: E402
from hypothesis import HealthCheck, Phase, settings  # noqa: E402
from schemathesis.checks import not_a_server_error, response_schema_conformance  # noqa: E402

pytestmark = pytest.mark.e2e

# Names that exist on the fuzzed server: path parameters and body fields use them half of the time, so
# operations get past 404 and reach the bindings
KNOWN_NAMES = {
    "binding_instance_name": ["dummy", "llm", "remote", "vision", "imager"],
    "name": ["lollms", "calculator"],
    "model_id": ["llm", "remote/gpt-fake", "dummy", "vision/dummy-vision", "personality:lollms"],
}
KNOWN_BODY_VALUES = {"binding_name": ["llm", "remote", "dummy"], "model": ["llm", "remote/gpt-fake", "dummy"]}
SMOL = "SmolLM2-135M-Instruct.Q4_1.gguf"
MAX_FUZZ_TOKENS = 8
SPEC_501_PREFIX = "/api/v1/"  # the spec's own API answers 501 when a binding cannot do what is asked


def no_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """No 5xx, except the 501 the spec prescribes on /api/v1 for "this binding cannot do that"."""
    if response.status_code == 501 and case.path.startswith(SPEC_501_PREFIX):
        return None
    return not_a_server_error(ctx, response, case)  # type: ignore[no-any-return]


CHECKS = [no_server_error, response_schema_conformance]
FUZZ_SETTINGS = settings(
    max_examples=6, derandomize=True, database=None, deadline=None, phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    cfg = tmp_path_factory.mktemp("fuzz") / "cfg"
    with running(FakeOpenAI) as upstream:
        write_config(
            cfg,
            {
                "llm": ("llamacpp_binding", {"default_model": SMOL, "n_ctx": 256, "n_threads": 1, "max_loaded_models": 1,
                                             "models_folder": str(cfg.parent / "models")}),
                "remote": ("openai_binding", {"base_url": f"{upstream.url}/v1", "api_key": "sk-fuzz-upstream-123",
                                              "api_key_env": None, "default_model": "gpt-fake", "max_retries": 0, "timeout": 10.0}),
                "dummy": ("dummy_binding", {}),
                "vision": ("dummy_binding", {"default_model": "dummy-vision"}),
                "imager": ("dummy_binding", {"mode": "image"}),
                "audio": ("dummy_binding", {"mode": "audio"}),
            },
            defaults={"ttt_binding": "llm", "tti_binding": "imager", "i2i_binding": "imager", "tts_binding": "audio",
                      "default_max_output_tokens": 8},
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
    body = case.body if isinstance(getattr(case, "body", None), dict) else {}
    for key, names in KNOWN_BODY_VALUES.items():
        value = body.get(key)
        if isinstance(value, str) and len(value) % 2 == 0:
            body[key] = names[len(value) // 2 % len(names)]
    # bounded in time: a real model generates at most MAX_FUZZ_TOKENS tokens per request
    for holder in (body, body.get("parameters") if isinstance(body.get("parameters"), dict) else {}):
        for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
            if isinstance(holder.get(key), int) and not isinstance(holder[key], bool) and holder[key] > MAX_FUZZ_TOKENS:
                holder[key] = MAX_FUZZ_TOKENS


def _no_server_error(case: Any, fuzz_server: ServerProcess, headers: dict[str, str]) -> None:
    _use_known_names(case)
    response = case.call_and_validate(base_url=fuzz_server.base_url, headers=headers, checks=CHECKS, timeout=30)
    allowed_501 = response.status_code == 501 and case.path.startswith(SPEC_501_PREFIX)
    assert response.status_code < 500 or allowed_501, (response.status_code, response.text[:500])


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
