"""uvicorn's h11 protocol with a bounded request head (431, not a generic 400) and coalesced writes.

h11 stops buffering a request line + headers beyond ``h11_max_incomplete_event_size`` bytes and says
which status fits (431 Request Header Fields Too Large); uvicorn answers every parser error with 400.
This protocol reads h11's hint from the error uvicorn is handling and answers with it.

uvicorn writes the status line and headers, then each body part, each with its own ``send()`` system call
(two for a plain JSON answer). Here the writes made in one turn of the event loop leave in one call at
the end of that turn: a plain answer goes out as one TCP segment, and a stream's head travels with its
first event when it is ready. Nothing waits for more data than the turn already produced.

Header lines known to be valid: h11 checks every response header against its grammar, lower-cases it and
scans the list again to frame the message (about 1.5 µs per header). The headers the server adds to every
answer (security headers, request id, timing: ``middleware.RequestContextMiddleware``) are valid by
construction and play no part in framing, so this protocol offers the ``head_lines`` extension: the lines an
``http.response.start`` message carries there are added to the head after h11 wrote it (before the blank line
that ends it). Without the extension (another server, the in-process test client) the same headers travel in
the message's ``headers`` list.

Framing and reading: the usual answer (a Content-Length or a stream) is framed by ``plain_send`` rather than
through h11's events (same bytes, errors and h11 states), request heads are read by ``request_head`` (h11's
reader, each header line checked once), and one keep-alive timer serves a connection for its whole life.
"""

from __future__ import annotations

import asyncio
import sys
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol, RequestResponseCycle
from uvicorn.server import ServerState

from lollms_server import shortcuts
from lollms_server.api.head_lines import HEAD_LINES_EXTENSION, HEAD_LINES_KEY

if TYPE_CHECKING:
    from lollms_server.api.plain_send import PlainBody

# The shortcuts of this module (lollms_server/shortcuts.py), each used only when its check passes:
PROTOCOL = "api/h11_protocol.py (431 for a large head, coalesced writes, and every part below)"
CYCLE = "api/h11_protocol.py's request/response cycle (head lines, answers framed by plain_send)"
KEEP_ALIVE = "api/h11_protocol.py's one keep-alive timer per connection"
HEADS = "api/request_head.py (request head lines remembered)"
FRAMING = "api/plain_send.py (answers framed without h11's events)"
HEADERS = "uvicorn's default headers checked once per list"
_import_problems: dict[str, str] = {}
try:
    from h11._connection import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
except ImportError:
    DEFAULT_MAX_INCOMPLETE_EVENT_SIZE = 16 * 1024  # (h11's default since 0.8)
try:
    from h11._headers import normalize_and_validate
except ImportError as exc:
    normalize_and_validate = None  # type: ignore[assignment]
    _import_problems[HEADERS] = f"cannot import: {exc}"
try:
    from lollms_server.api import request_head
except (ImportError, AttributeError) as exc:
    request_head = None  # type: ignore[assignment]
    _import_problems[HEADS] = f"cannot import: {exc}"
try:
    from lollms_server.api import plain_send
except (ImportError, AttributeError) as exc:
    plain_send = None  # type: ignore[assignment]
    _import_problems[FRAMING] = f"cannot import: {exc}"
plain_start = plain_send.plain_start if plain_send is not None else None

_HEAD_END = b"\r\n\r\n"


class CoalescingTransport:
    """A transport proxy: the writes of one event-loop turn leave in one ``write`` of the real transport."""

    JOIN_LIMIT = 64 * 1024  # more pending data than this is written at once (big bodies are not copied)

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._size = 0
        self._scheduled = False
        self.head_lines: bytes | None = None  # set by _LeanCycle.send for the response head it is writing

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if self.head_lines is not None:  # the response head: h11 ends it with a blank line
            data = bytes(data)
            if data.startswith(b"HTTP/") and data.endswith(_HEAD_END):
                data = data[:-2] + self.head_lines + b"\r\n"
                self.head_lines = None
        self._pending.append(bytes(data))
        self._size += len(data)
        if self._size > self.JOIN_LIMIT:  # the real transport sees it now, so its flow control still applies
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        pending, size = self._pending, self._size
        if not pending:
            return
        self._pending, self._size = [], 0
        if len(pending) == 1 or size > self.JOIN_LIMIT:
            for data in pending:
                self._transport.write(data)
        else:
            self._transport.write(b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:  # (asked after every response: spared the __getattr__ fallback)
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:  # everything else is the real transport's
        return getattr(self._transport, name)


_FRAMING = frozenset({b"content-length", b"transfer-encoding", b"connection"})
_server_lines: tuple[object, bytes | None] = (None, None)  # (uvicorn's default header list, its lines or None)


def _default_lines(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """uvicorn's own headers (``Date``, ``Server``, any ``--header``) as head lines; checked by h11 once per list
    (uvicorn makes a new one each second, for the date). None when one of them frames the message or is invalid."""
    global _server_lines
    if normalize_and_validate is None:
        return None
    if _server_lines[0] is headers:
        return _server_lines[1]
    lines: bytes | None
    try:
        normalize_and_validate(headers)
    except h11.LocalProtocolError:
        lines = None
    else:
        lines = None if any(name.lower() in _FRAMING for name, _ in headers) else b"".join(
            b"%s: %s\r\n" % (name, value) for name, value in headers)
    _server_lines = (headers, lines)
    return lines


class _LeanCycle(RequestResponseCycle):
    """uvicorn's request/response cycle, taking ``HEAD_LINES_KEY`` (see the module's docstring); uvicorn's own
    default headers (``Date``, ``Server``) go the same way. The usual answer (a Content-Length, or a stream sent
    chunked) is framed here (``plain_send``): the same bytes and h11 states as ``RequestResponseCycle.send`` gives."""

    plain: "PlainBody | None" = None  # the answer being framed here, between its start and its last body part

    async def send(self, message: Any) -> None:
        plain = self.plain
        if plain is not None and message["type"] == "http.response.body":
            await self._send_plain_body(plain, message)
            return
        transport = self.transport
        if message["type"] != "http.response.start" or self.response_started or not isinstance(transport, CoalescingTransport):
            await super().send(message)
            return
        lines = message.get(HEAD_LINES_KEY) or b""
        defaults = _default_lines(self.default_headers)
        if defaults is not None:
            self.default_headers = []  # (this cycle's: the protocol's list is untouched)
            lines = defaults + lines
        if (defaults is not None and _checked.framing and not self.access_log and not self.flow.write_paused
                and not self.disconnected):
            plain = plain_start(self.conn, self.scope["method"], message, lines)
            if plain is not None:
                self.response_started = True
                self.waiting_for_100_continue = False
                self.plain = plain
                transport.write(plain.head)
                return
        if not lines:
            await super().send(message)
            return
        transport.head_lines = lines
        try:
            await super().send(message)  # (h11 never sees the key: it builds its event from status and headers)
        finally:
            if transport.head_lines is not None:  # no head was written (the client went away): nothing to add to
                transport.head_lines = None

    async def _send_plain_body(self, plain: "PlainBody", message: Any) -> None:
        """``RequestResponseCycle.send`` for a body part of an answer framed by ``plain_start``."""
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()  # (a client slower than its stream: wait as uvicorn waits)
        if self.disconnected:
            return
        body = message.get("body", b"")
        more_body = message.get("more_body", False)
        framed = plain.frame(self.conn, body)
        if framed:
            self.transport.write(framed)
        if more_body:
            return
        self.plain = None
        self.response_complete = True
        self.message_event.set()
        end = plain.end(self.conn)
        if end:
            self.transport.write(end)
        if self.conn.our_state is h11.MUST_CLOSE or not self.keep_alive:
            self.conn.send(event=h11.ConnectionClosed())
            self.transport.close()
        self.on_response()


class _Checked:
    """Which of h11's internals this module may use: checked once, at the first connection (or by ``selected()``)."""

    def __init__(self) -> None:
        self.done = False
        self.heads = self.framing = False
        self.cycle = True  # (uvicorn's side: set by selected())

    def check(self) -> None:
        self.done = True
        heads = _import_problems.get(HEADS) or request_head.problem()
        framing = _import_problems.get(FRAMING) or _import_problems.get(HEADERS) or plain_send.problem()
        for shortcut, problem in ((HEADS, heads), (FRAMING, framing)):
            if problem:
                shortcuts.turned_off(shortcut, "h11", problem)
        if _import_problems.get(HEADERS):
            shortcuts.turned_off(HEADERS, "h11", _import_problems[HEADERS])
        self.heads, self.framing = not heads, not framing


_checked = _Checked()

# What this module's subclasses take from uvicorn's: on_response_complete and the body part of RequestResponseCycle.send
# are written here again, so they must be the methods this module copies (the names they use, exactly)
_ON_RESPONSE_COMPLETE = frozenset({
    "DONE", "_unset_keepalive_if_required", "call_later", "conn", "flow", "h11", "handle_events", "is_closing", "loop",
    "our_state", "resume_reading", "server_state", "start_next_cycle", "their_state", "timeout_keep_alive",
    "timeout_keep_alive_handler", "timeout_keep_alive_task", "total_requests", "transport"})
_CYCLE_SEND = frozenset({
    "CLOSE_HEADER", "ConnectionClosed", "Data", "EndOfMessage", "MUST_CLOSE", "Response", "RuntimeError", "STATUS_PHRASES",
    "access_log", "access_logger", "close", "conn", "default_headers", "disconnected", "drain", "flow", "get",
    "get_client_addr", "get_path_with_query_string", "h11", "info", "keep_alive", "list", "message_event", "on_response",
    "our_state", "response_complete", "response_started", "scope", "send", "set", "transport", "waiting_for_100_continue",
    "write", "write_paused"})


def _same_method(label: str, method: Any, names: frozenset[str]) -> str | None:
    if shortcuts.code_names(method) != names:
        return f"{label} is not the method this protocol repeats (it uses other names)"
    return None


def _uses(label: str, method: Any, name: str) -> str | None:
    return None if name in shortcuts.code_names(method) else f"{label} uses no {name}"


_INIT_PARAMETERS = ("self", "config", "server_state", "app_state", "_loop")  # (BoundedHeadH11Protocol.__init__ passes them on)


def uvicorn_problem() -> str | None:
    """Why the protocol below cannot stand in for uvicorn's at all (None: it can)."""
    init = getattr(H11Protocol.__init__, "__code__", None)
    if init is None or init.co_varnames[:init.co_argcount + init.co_kwonlyargcount] != _INIT_PARAMETERS:
        return f"H11Protocol.__init__ does not take exactly {', '.join(_INIT_PARAMETERS[1:])}"
    return shortcuts.first(
        shortcuts.missing(H11Protocol, "handle_events", "data_received", "connection_lost", "send_400_response",
                          "timeout_keep_alive_handler"),
        shortcuts.unset("H11Protocol.__init__", H11Protocol.__init__, "conn", "cycle", "timeout_keep_alive_task",
                        "timeout_keep_alive", "server_state", "loop", "logger"),
        shortcuts.unset("H11Protocol.connection_made", H11Protocol.connection_made, "transport", "flow"),
        _uses("H11Protocol.handle_events", H11Protocol.handle_events, "cycle"))


def cycle_problem() -> str | None:
    """Why ``_LeanCycle`` cannot stand in for uvicorn's request/response cycle (None: it can)."""
    return shortcuts.first(
        _same_method("RequestResponseCycle.send", RequestResponseCycle.send, _CYCLE_SEND),
        shortcuts.unset("RequestResponseCycle.__init__", RequestResponseCycle.__init__, "transport", "flow", "conn", "scope",
                        "access_log", "default_headers", "disconnected", "keep_alive", "waiting_for_100_continue",
                        "response_started", "response_complete", "message_event", "on_response"),
        _uses("H11Protocol.handle_events", H11Protocol.handle_events, "RequestResponseCycle"))


def keep_alive_problem() -> str | None:
    """Why the one keep-alive timer cannot stand in for uvicorn's (None: it can)."""
    return shortcuts.first(
        _same_method("H11Protocol.on_response_complete", H11Protocol.on_response_complete, _ON_RESPONSE_COMPLETE),
        _uses("H11Protocol.data_received", H11Protocol.data_received, "_unset_keepalive_if_required"))


def selected() -> Any:
    """uvicorn's ``http=`` for ``serve``: ``BoundedHeadH11Protocol`` with the parts whose checks pass (uvicorn's own
    cycle or keep-alive handling for a part that does not), or uvicorn's own h11 protocol when the protocol itself
    does not fit."""
    problem = uvicorn_problem()
    if problem:
        shortcuts.turned_off(PROTOCOL, "uvicorn", problem)
        return "h11"
    cycle = cycle_problem()
    if cycle:
        shortcuts.turned_off(CYCLE, "uvicorn", cycle)
    _checked.check()
    _checked.cycle = not cycle
    keep_alive = keep_alive_problem()
    if keep_alive:
        shortcuts.turned_off(KEEP_ALIVE, "uvicorn", keep_alive)
        # uvicorn's own methods (where it has them): our timer is then never armed
        own = {name: H11Protocol.__dict__[name] for name in ("on_response_complete", "_unset_keepalive_if_required")
               if name in H11Protocol.__dict__}
        return type("BoundedHeadH11ProtocolUvicornKeepAlive", (BoundedHeadH11Protocol,), own)
    return BoundedHeadH11Protocol


class BoundedHeadH11Protocol(H11Protocol):
    """Pass as ``uvicorn.run(..., http=BoundedHeadH11Protocol, h11_max_incomplete_event_size=N)``.

    (Every write goes through the CoalescingTransport; uvicorn's FlowControl keeps the real transport.)
    """

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.head_limit = config.h11_max_incomplete_event_size or DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
        if not _checked.done:
            _checked.check()
        if _checked.heads:
            self.conn = request_head.HeadConnection(h11.SERVER, self.head_limit)  # (request heads: see request_head)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport, self.loop)  # type: ignore[assignment]

    # Keep-alive: uvicorn cancels its idle timer whenever data arrives and arms a new one after every answer (a
    # timer handle made and cancelled per request). Here one timer stays armed: when it fires, the connection is
    # closed if it has been idle for the whole ``timeout_keep_alive`` since its last answer, else it waits for
    # what is left (busy: the next answer arms it again). The same connections close at the same moments.
    _idle_since: float | None = None  # loop time of the last answer ended, None while a request is being handled

    def _unset_keepalive_if_required(self) -> None:  # (uvicorn calls it when data or a request arrives)
        self._idle_since = None

    def _keep_alive_due(self) -> None:
        self.timeout_keep_alive_task = None
        since = self._idle_since
        if since is None:
            return
        left = since + self.timeout_keep_alive - self.loop.time()
        if left > 0:
            self.timeout_keep_alive_task = self.loop.call_later(left, self._keep_alive_due)
            return
        self.timeout_keep_alive_handler()

    def on_response_complete(self) -> None:
        """uvicorn's, with the timer above, and without looking for a next request when nothing was received."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._idle_since = self.loop.time()
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self._keep_alive_due)
        self.flow.resume_reading()
        conn = self.conn
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
            data, closed = conn.trailing_data
            if data or closed:  # (else h11 would only answer NEED_DATA)
                self.handle_events()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None

    def _unsupported_upgrade_warning(self) -> None:
        # served with ws="none" (no WebSocket route): the request is answered as plain HTTP; uvicorn's two
        # warnings per such request would let any client fill the log
        self.logger.debug("upgrade request (%s) answered as plain HTTP", getattr(self, "_get_upgrade", lambda: None)())

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        cycle = self.cycle
        if cycle is not None and cycle is not before and type(cycle) is RequestResponseCycle and _checked.cycle:
            # a new request: its task has been created but has not run yet (it reads cycle.send when it does)
            cycle.__class__ = _LeanCycle
            cycle.scope.setdefault("extensions", {})[HEAD_LINES_EXTENSION] = {}  # type: ignore[typeddict-unknown-key]

    def send_400_response(self, msg: str) -> None:
        # uvicorn calls this while it handles h11's error: the status h11 suggests is on that exception
        error = sys.exc_info()[1]
        status = error.error_status_hint if isinstance(error, h11.RemoteProtocolError) else 400
        if status != HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE:
            super().send_400_response(msg)
            return
        body = (f"Request line and headers are larger than {self.head_limit} bytes (server.max_header_bytes).").encode()
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        for event in (h11.Response(status_code=status, headers=headers, reason=HTTPStatus(status).phrase),
                      h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))  # type: ignore[arg-type]
        self.transport.close()
