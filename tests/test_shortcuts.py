"""Every shortcut through a library's internals (lollms_server/shortcuts.py) is used when the library is shaped as
it expects, and falls back to the library's standard path — with one warning — when it is not.

The mismatches are simulated the way a new release would bring them: a method of another shape (a wrapper with
other parameter names, or one that sets other attributes), a changed module. In-process tests check each check
and each fallback; real server processes (the library changed before the server starts, through a
``sitecustomize`` module) check that the server still starts and answers correctly through the standard path.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any, Iterator

import h11
import httpx
import pytest
from helpers import API_KEY, ServerProcess, api_client, write_config
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol, RequestResponseCycle
from uvicorn.server import ServerState

from lollms_server import shortcuts
from lollms_server.api import h11_protocol, lazy_routes, lean_route, plain_send, request_head
from lollms_server.api.lean_route import LeanRoute

H = {"X-API-Key": API_KEY}
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def fresh_checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test checks afresh (and leaves the process's own results as they were)."""
    monkeypatch.setattr(shortcuts, "off", {})
    monkeypatch.setattr(h11_protocol, "_checked", h11_protocol._Checked())
    monkeypatch.setattr(lean_route, "_problem", False)
    yield


def _wrapped(func: Any) -> Any:
    """The same behaviour with another shape: what a refactored release looks like to the checks."""

    def other(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return other


# --- the fast path when everything matches -------------------------------------------------------------------------

def test_every_check_passes_on_the_installed_libraries() -> None:
    assert request_head.problem() is None
    assert plain_send.problem() is None
    assert h11_protocol.uvicorn_problem() is None
    assert lean_route.fastapi_problem() is None
    assert shortcuts.http_protocol() is h11_protocol.BoundedHeadH11Protocol
    assert h11_protocol._checked.heads and h11_protocol._checked.framing
    assert shortcuts.off == {}


# --- h11 -----------------------------------------------------------------------------------------------------------

def test_h11_of_another_shape_turns_the_head_reader_and_framing_off(monkeypatch: pytest.MonkeyPatch,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(h11.Connection, "__init__", _wrapped(h11.Connection.__init__))  # sets its state elsewhere
    assert "_cstate" in (request_head.problem() or "")
    assert "_cstate" in (plain_send.problem() or "")
    with caplog.at_level(logging.WARNING, "lollms_server.shortcuts"):
        assert shortcuts.http_protocol() is h11_protocol.BoundedHeadH11Protocol  # (uvicorn's side still matches)
    assert not h11_protocol._checked.heads and not h11_protocol._checked.framing
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all(w.startswith(f"h11 {h11.__version__}: ") for w in warnings)
    assert any("request_head" in w for w in warnings) and any("plain_send" in w for w in warnings)


def test_h11_reader_hook_of_another_shape_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(h11.Connection, "_get_io_object", _wrapped(h11.Connection._get_io_object))
    assert "takes no" in (request_head.problem() or "")


def test_h11_writing_other_bytes_turns_framing_off(monkeypatch: pytest.MonkeyPatch) -> None:
    import h11._writers

    real = h11._writers.write_headers

    def titled(headers: Any, write: Any) -> None:  # an h11 that writes header names in title case
        real(headers, lambda data: write(data.replace(b"content-type", b"Content-Type")))

    monkeypatch.setattr(h11._writers, "write_headers", titled)
    assert "framed" in (plain_send.problem() or "")


class _Recorder(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()
        self.closed = False

    def write(self, data: Any) -> None:
        self.data += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _json_app(scope: Any, receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    body = json.dumps({"path": scope["path"]}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def _serve_two_requests() -> tuple[bytes, Any]:
    async def run() -> tuple[bytes, Any]:
        config = Config(_json_app, http=h11_protocol.BoundedHeadH11Protocol, ws="none", lifespan="off", log_level="critical",
                        access_log=False, proxy_headers=False)
        config.load()
        state = ServerState()
        state.default_headers = [(b"date", b"Thu, 01 Jan 2026 00:00:00 GMT"), (b"server", b"uvicorn")]
        proto = h11_protocol.BoundedHeadH11Protocol(config, state, {}, asyncio.get_running_loop())
        transport = _Recorder()
        proto.connection_made(transport)
        for path in (b"/a", b"/b"):
            proto.data_received(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            for _ in range(20):
                await asyncio.sleep(0)
        conn = proto.conn
        proto.connection_lost(None)
        return bytes(transport.data), conn

    return asyncio.run(run())


def test_with_h11_internals_off_the_protocol_answers_the_same_bytes_through_h11(monkeypatch: pytest.MonkeyPatch) -> None:
    fast, fast_conn = _serve_two_requests()
    assert type(fast_conn) is request_head.HeadConnection
    calls: list[int] = []
    monkeypatch.setattr(h11_protocol, "plain_start", lambda *a: calls.append(1))  # (must not be asked)
    monkeypatch.setattr(h11_protocol, "_checked", h11_protocol._Checked())
    monkeypatch.setattr(request_head, "problem", lambda: "simulated")
    monkeypatch.setattr(plain_send, "problem", lambda: "simulated")
    slow, slow_conn = _serve_two_requests()
    assert type(slow_conn) is h11.Connection and calls == []
    assert slow == fast and slow.count(b'HTTP/1.1 200 OK\r\n') == 2 and b'{"path": "/b"}' in slow


# --- uvicorn -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls, name", [(H11Protocol, "connection_made"), (H11Protocol, "__init__"), (H11Protocol, "handle_events")])
def test_uvicorn_of_another_shape_gets_its_own_protocol(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
                                                        cls: type, name: str) -> None:
    monkeypatch.setattr(cls, name, _wrapped(getattr(cls, name)))
    assert h11_protocol.uvicorn_problem()
    with caplog.at_level(logging.WARNING, "lollms_server.shortcuts"):
        assert shortcuts.http_protocol() == "h11"
        assert shortcuts.http_protocol() == "h11"
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and warnings[0].startswith("uvicorn ") and h11_protocol.PROTOCOL in warnings[0]


@pytest.mark.parametrize("cls, name", [(RequestResponseCycle, "send"), (RequestResponseCycle, "__init__")])
def test_uvicorn_cycle_of_another_shape_is_served_as_uvicorns(monkeypatch: pytest.MonkeyPatch, cls: type, name: str) -> None:
    monkeypatch.setattr(cls, name, _wrapped(getattr(cls, name)))
    assert shortcuts.http_protocol() is h11_protocol.BoundedHeadH11Protocol
    assert list(shortcuts.off) == [h11_protocol.CYCLE] and not h11_protocol._checked.cycle
    monkeypatch.undo()  # (the cycle itself as shipped, still not swapped: uvicorn's cycle answers)
    monkeypatch.setattr(h11_protocol._checked, "cycle", False)
    calls: list[int] = []
    monkeypatch.setattr(h11_protocol, "plain_start", lambda *a: calls.append(1))
    data, conn = _serve_two_requests()
    assert calls == [] and data.count(b"HTTP/1.1 200 OK\r\n") == 2 and b'{"path": "/b"}' in data


def test_uvicorn_keep_alive_of_another_shape_is_uvicorns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(H11Protocol, "on_response_complete", _wrapped(H11Protocol.on_response_complete))
    protocol = shortcuts.http_protocol()
    assert issubclass(protocol, h11_protocol.BoundedHeadH11Protocol) and protocol is not h11_protocol.BoundedHeadH11Protocol
    assert protocol.on_response_complete is H11Protocol.on_response_complete
    assert protocol._unset_keepalive_if_required is H11Protocol._unset_keepalive_if_required
    assert list(shortcuts.off) == [h11_protocol.KEEP_ALIVE]


def test_uvicorn_passing_another_argument_to_its_protocol_gets_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    real = H11Protocol.__init__

    def __init__(self: Any, config: Any, server_state: Any, app_state: Any, _loop: Any = None, limits: Any = None) -> None:
        real(self, config, server_state, app_state, _loop)

    monkeypatch.setattr(H11Protocol, "__init__", __init__)
    assert "exactly" in (h11_protocol.uvicorn_problem() or "")
    assert shortcuts.http_protocol() == "h11"


def test_a_protocol_module_that_cannot_be_imported_gives_uvicorns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lollms_server.api.h11_protocol", None)  # `import` raises ImportError
    monkeypatch.delattr(sys.modules["lollms_server.api"], "h11_protocol", raising=False)
    assert shortcuts.http_protocol() == "h11"
    assert "cannot import" in next(iter(shortcuts.off.values()))


# --- FastAPI -------------------------------------------------------------------------------------------------------

async def _generate_twice(cfg: Path) -> list[Any]:
    answers = []
    async with api_client(cfg) as client:
        for _ in range(2):
            r = await client.post("/api/v1/generate", json={"input_data": [
                {"type": "text", "role": "user_prompt", "data": "a b c"}]})
            answers.append((r.status_code, r.json()["output"][0]["data"]))
    return answers


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    d = tmp_path / "cfg"
    write_config(d, {"dummy": ("dummy_binding", {})}, defaults={"ttt_binding": "dummy"})
    return d


def _count_handlers(monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], list[int]]:
    """How many handlers were built (all, and lean ones) from now on."""
    built: list[int] = []
    lean: list[int] = []
    real_build, real_lean = LeanRoute.get_route_handler, LeanRoute._lean_handler

    def build(self: LeanRoute) -> Any:
        built.append(1)
        return real_build(self)

    def lean_handler(self: LeanRoute, *args: Any) -> Any:
        lean.append(1)
        return real_lean(self, *args)

    monkeypatch.setattr(LeanRoute, "get_route_handler", build)
    monkeypatch.setattr(LeanRoute, "_lean_handler", lean_handler)
    return built, lean


async def test_fastapi_of_another_shape_leaves_routes_to_fastapi(monkeypatch: pytest.MonkeyPatch, cfg: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    from fastapi._compat import ModelField

    monkeypatch.setattr(ModelField, "validate", _wrapped(ModelField.validate))
    assert "ModelField.validate takes no parameter" in (lean_route.fastapi_problem() or "")
    built, lean = _count_handlers(monkeypatch)
    with caplog.at_level(logging.WARNING, "lollms_server.shortcuts"):
        assert await _generate_twice(cfg) == [(200, "a b c")] * 2
    assert built and not lean  # FastAPI's own handler for every route
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [f"fastapi {__import__('fastapi').__version__}"]


async def test_fastapi_as_expected_gets_the_lean_routes(monkeypatch: pytest.MonkeyPatch, cfg: Path) -> None:
    built, lean = _count_handlers(monkeypatch)
    assert await _generate_twice(cfg) == [(200, "a b c")] * 2
    assert built and lean and shortcuts.off == {}


async def test_a_route_of_another_shape_is_left_to_fastapi(monkeypatch: pytest.MonkeyPatch, cfg: Path) -> None:
    def broken(route: Any) -> Any:
        raise AttributeError("'APIRoute' object has no attribute 'body_field'")

    monkeypatch.setattr(lean_route, "_plan", broken)
    assert await _generate_twice(cfg) == [(200, "a b c")] * 2
    assert "body_field" in shortcuts.off[lean_route.SHORTCUT]


# --- Starlette -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path, root", [("/v1/models", ""), ("/api/v1/x", "/api"), ("/api", "/api"), ("/apix/y", "/api"),
                                        ("/other", "/api"), ("/", "")])
def test_the_route_path_copy_is_starlettes(path: str, root: str) -> None:
    import starlette._utils

    assert lazy_routes.get_route_path is getattr(starlette._utils, "get_route_path", lazy_routes.route_path)
    scope = {"type": "http", "path": path, "root_path": root}
    assert lazy_routes.route_path(scope) == lazy_routes.get_route_path(scope)  # type: ignore[arg-type]  # Starlette's own


# --- real server processes, the library changed before the server starts ------------------------------------------

UVICORN_FASTAPI_PYDANTIC = '''
def _wrap(func):
    def other(*args, **kwargs):
        return func(*args, **kwargs)
    return other

from pydantic._internal import _fields, _generate_schema
_fields.takes_validated_data_argument = _generate_schema.takes_validated_data_argument = _wrap(_fields.takes_validated_data_argument)
from lollms_server.api import uvicorn_import
uvicorn_import.prepare()
import uvicorn.server
import uvicorn.protocols.http.h11_impl as impl
uvicorn.server.Server.__init__ = _wrap(uvicorn.server.Server.__init__)
impl.H11Protocol.connection_made = _wrap(impl.H11Protocol.connection_made)
from fastapi._compat import ModelField
ModelField.validate = _wrap(ModelField.validate)
'''

UVICORN_PARTS = '''
from lollms_server.api import uvicorn_import
uvicorn_import.prepare()
import uvicorn.protocols.http.h11_impl as impl
_send = impl.RequestResponseCycle.send
async def send(self, message):
    await _send(self, message)
impl.RequestResponseCycle.send = send
_done = impl.H11Protocol.on_response_complete
def on_response_complete(self):
    _done(self)
impl.H11Protocol.on_response_complete = on_response_complete
'''

H11 = '''
import h11
_init = h11.Connection.__init__
def __init__(self, *args, **kwargs):
    _init(self, *args, **kwargs)
h11.Connection.__init__ = __init__
'''

IMPORTS_CHANGED = '''
import __future__
import dataclasses
import sys

dataclasses.annotations = __future__.annotations  # a Python whose dataclasses module compiles with a future feature


class _NeedsEmailValidator:  # a FastAPI release whose import needs email_validator
    def find_spec(self, name, path=None, target=None):
        if name == "fastapi.openapi.models" and "email_validator" in sys.modules and sys.modules["email_validator"] is None:
            raise ImportError("this FastAPI needs email_validator")
        return None


class _NeedsMoreOfItsLog:  # a ConfigGuard release that needs more of configguard.log than the server's stand-in
    def find_spec(self, name, path=None, target=None):
        log = sys.modules.get("configguard.log")
        if name == "configguard.config" and log is not None and not hasattr(log, "std_logging"):
            raise ImportError("cannot import name 'std_logging' from 'configguard.log'")
        return None


sys.meta_path[:0] = [_NeedsEmailValidator(), _NeedsMoreOfItsLog()]

import pydantic  # a pydantic whose model_rebuild takes other parameters

_rebuild = pydantic.BaseModel.__dict__["model_rebuild"].__func__


def model_rebuild(cls, **options):
    return _rebuild(cls, **options)


pydantic.BaseModel.model_rebuild = classmethod(model_rebuild)
'''


def _changed_server(tmp_path: Path, prelude: str) -> ServerProcess:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(prelude)
    cfg = tmp_path / "cfg"
    write_config(cfg, {"dummy": ("dummy_binding", {})}, defaults={"ttt_binding": "dummy"},
                 main={"server": {"max_header_bytes": 4096}})
    path = os.pathsep.join([str(site), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return ServerProcess(cfg, env={"PYTHONPATH": path})


def _answers_correctly(base: str) -> None:
    with httpx.Client(base_url=base, headers=H) as client:  # one keep-alive connection
        for words in ("a b", "c d e"):
            r = client.post("/api/v1/generate", json={"input_data": [{"type": "text", "role": "user_prompt", "data": words}]})
            assert r.status_code == 200 and r.json()["output"][0]["data"] == words
        chat = client.post("/v1/chat/completions", json={"model": "dummy", "messages": [{"role": "user", "content": "hi there"}]})
        assert chat.status_code == 200 and chat.json()["choices"][0]["message"]["content"] == "hi there"
        with client.stream("POST", "/api/v1/generate", json={"input_data": [{"type": "text", "role": "user_prompt", "data": "x y"}],
                                                             "stream": True}) as s:
            assert s.headers["content-type"].startswith("text/event-stream")
            body = s.read().decode()
        assert json.loads([ln for ln in body.splitlines() if ln.startswith("data: ")][-1][6:])["type"] == "final"
        bad = client.post("/api/v1/generate", json={"input_data": 3})
        assert bad.status_code == 422


def _big_head_status(base: str) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8000 + b"\r\n\r\n")
        return sock.recv(200).split(b"\r\n")[0]


@pytest.mark.e2e
def test_server_with_uvicorn_fastapi_pydantic_changed_starts_and_answers(tmp_path: Path) -> None:
    with _changed_server(tmp_path, UVICORN_FASTAPI_PYDANTIC) as s:
        _answers_correctly(s.base_url)
        log = s.log()
    for what in ("api/h11_protocol.py", "api/uvicorn_import.py", "api/lean_route.py", "api/pydantic_import.py"):
        assert what in log, log
    assert "uvicorn " in log and "fastapi " in log and "pydantic " in log


@pytest.mark.e2e
def test_server_with_fastapi_configguard_and_dataclasses_changed_starts_and_answers(tmp_path: Path) -> None:
    with _changed_server(tmp_path, IMPORTS_CHANGED) as s:
        _answers_correctly(s.base_url)
        assert httpx.get(f"{s.base_url}/openapi.json", headers=H).json()["paths"]["/api/v1/generate"]
        log = s.log()
    assert "api/fastapi_import.py" in log and "needs email_validator" in log, log
    assert "core/dataclass_code.py" in log and "python 3." in log, log
    assert "core/configguard_import.py" in log and "configguard 0.6.1" in log, log
    assert "model_rebuild takes no _parent_namespace_depth" in log, log


def test_dataclasses_with_a_future_import_keep_the_builtin_exec(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import __future__
    import dataclasses

    from lollms_server.core import dataclass_code

    monkeypatch.setenv("LOLLMS_CACHE_DIR", str(tmp_path))
    dataclass_code.install()  # as expected: the cache's exec
    try:
        assert vars(dataclasses).get("exec") is dataclass_code._exec
    finally:
        dataclass_code.settle()
    monkeypatch.setattr(dataclasses, "annotations", __future__.annotations, raising=False)
    dataclass_code.install()
    try:
        assert "exec" not in vars(dataclasses) and "core/dataclass_code.py" in next(iter(shortcuts.off))
    finally:
        dataclass_code.settle()


@pytest.mark.e2e
def test_server_with_uvicorns_cycle_and_keep_alive_changed_keeps_the_rest(tmp_path: Path) -> None:
    with _changed_server(tmp_path, UVICORN_PARTS) as s:
        _answers_correctly(s.base_url)
        assert _big_head_status(s.base_url) == b"HTTP/1.1 431 Request Header Fields Too Large"  # still this protocol
        log = s.log()
    assert h11_protocol.CYCLE in log and h11_protocol.KEEP_ALIVE in log and h11_protocol.PROTOCOL not in log, log


@pytest.mark.e2e
def test_server_with_h11_changed_starts_and_answers(tmp_path: Path) -> None:
    with _changed_server(tmp_path, H11) as s:
        _answers_correctly(s.base_url)
        assert _big_head_status(s.base_url) == b"HTTP/1.1 431 Request Header Fields Too Large"  # still this protocol
        log = s.log()
    assert "api/request_head.py" in log and "api/plain_send.py" in log and f"h11 {h11.__version__}" in log
    assert "api/h11_protocol.py" not in log and "api/lean_route.py" not in log and "uvicorn " not in log


@pytest.mark.e2e
def test_server_with_the_tested_libraries_uses_every_shortcut(tmp_path: Path) -> None:
    with _changed_server(tmp_path, "") as s:
        _answers_correctly(s.base_url)
        assert _big_head_status(s.base_url) == b"HTTP/1.1 431 Request Header Fields Too Large"
        log = s.log()
    assert "standard path serves instead" not in log, log


def test_fastapi_with_a_new_kind_of_dependency_parameter_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.dependencies.models import Dependant

    fields = dict(Dependant.__dataclass_fields__)
    fields["sse_param_name"] = fields["request_param_name"]  # a release that knows one more kind of parameter
    monkeypatch.setattr(Dependant, "__dataclass_fields__", fields)
    assert "sse_param_name" in (lean_route.fastapi_problem() or "")


def test_code_names_include_comprehensions_whatever_the_python() -> None:
    def method(self: Any) -> Any:
        return [item.lower() for item in self.items]

    assert {"items", "lower"} <= shortcuts.code_names(method)
    assert shortcuts.unset("method", method, "items") is None
    assert shortcuts.unset("method", method, "other") == "method sets no other"


def test_fastapi_with_a_new_route_option_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.routing import APIRoute

    real = APIRoute.__init__

    def __init__(self: Any, path: str, endpoint: Any, *, response_model_exclude_computed: bool = False, **options: Any) -> None:
        real(self, path, endpoint, **options)  # a release with one more option

    monkeypatch.setattr(APIRoute, "__init__", __init__)
    assert "response_model_exclude_computed" in (lean_route.fastapi_problem() or "")
