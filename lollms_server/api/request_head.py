"""Request heads read as h11 reads them, each header line checked by h11's pattern once and then remembered.

h11 matches every header line of every request against its header-field pattern (a regular expression with
named groups), about a microsecond per line. A client on a keep-alive connection sends the same lines again
and again (``Host``, ``User-Agent``, ``Accept``, its API key, ``Content-Type``…): ``HeadConnection`` is an
``h11.Connection`` whose reader for a new request remembers the (name, value) each line gave, and asks h11's
pattern only for a line it has not seen. Everything else is h11's own: the extraction of the head from the
buffer, the request line, obsolete line folding (a head that has one is read entirely by h11), the event and
its checks, the errors. The memory is bounded (lines up to ``LINE_MAX`` bytes, at most ``LINES_MAX`` of them), and
keeps no credential: a line of ``Authorization``, ``Cookie``, an API key or a provider key is checked every time.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import h11
from h11._readers import READERS, _decode_header_lines, header_field_re, request_line_re
from h11._receivebuffer import ReceiveBuffer
from h11._util import validate

LINE_MAX = 512
LINES_MAX = 512
_FIELDS: dict[bytes, tuple[bytes, bytes]] = {}  # a header line -> its (name, value), as h11's pattern splits it
_SECRET = frozenset({b"authorization", b"proxy-authorization", b"cookie", b"x-api-key", b"api-key"})
_SECRET_PREFIX = b"x-provider-"  # (byok: a provider key and base URL a request brings)


def _fields(lines: list[Any]) -> list[tuple[bytes, bytes]]:  # (bytearrays, as h11's buffer gives them)
    out: list[tuple[bytes, bytes]] = []
    for line in lines:
        if line[:1] in (b" ", b"\t"):  # an obsolete line fold: h11 joins it to the line before
            return list(_decode_header_lines(lines))
        key = bytes(line)
        known = _FIELDS.get(key)
        if known is None:
            matches = validate(header_field_re, key, "illegal header line: {!r}", line)
            known = (matches["field_name"], matches["field_value"])
            name = known[0].lower()
            if len(key) <= LINE_MAX and name not in _SECRET and not name.startswith(_SECRET_PREFIX):
                if len(_FIELDS) >= LINES_MAX:
                    _FIELDS.clear()
                _FIELDS[key] = known
        out.append(known)
    return out


def read_request(buf: ReceiveBuffer) -> Optional[h11.Request]:
    """h11's reader for a client in state IDLE (``maybe_read_from_IDLE_client``), with the lines remembered."""
    lines: list[Any] | None = buf.maybe_extract_lines()  # type: ignore[assignment]
    if lines is None:
        if buf.is_next_line_obviously_invalid_request_line():
            raise h11.LocalProtocolError("illegal request line")
        return None
    if not lines:
        raise h11.LocalProtocolError("no request line received")
    matches = validate(request_line_re, lines[0], "illegal request line: {!r}", lines[0])
    return h11.Request(headers=_fields(lines[1:]), _parsed=True, **matches)


class HeadConnection(h11.Connection):
    """An ``h11.Connection`` (server side) reading request heads with ``read_request``."""

    def _get_io_object(self, role: Any, event: Any, io_dict: Any) -> Optional[Callable[..., Any]]:
        if io_dict is READERS and role is h11.CLIENT and self._cstate.states[role] is h11.IDLE:
            return read_request
        return super()._get_io_object(role, event, io_dict)  # type: ignore[no-any-return]


def problem() -> str | None:
    """Why this module cannot stand in for h11's reader with the installed h11 (None: it can). Checked once,
    before the first connection (``h11_protocol``): h11's hook and buffer as expected, and one request head
    read here giving the very event h11's own reader gives."""
    from lollms_server import shortcuts

    found = shortcuts.first(
        shortcuts.no_parameters("h11.Connection._get_io_object", h11.Connection._get_io_object, "self", "role", "event", "io_dict"),
        shortcuts.unset("h11.Connection.__init__", h11.Connection.__init__, "_cstate"),
        shortcuts.missing(ReceiveBuffer, "maybe_extract_lines", "is_next_line_obviously_invalid_request_line"))
    if found:
        return found
    head = b"GET /v1/x?y=1 HTTP/1.1\r\nHost: a\r\nX-Check: b c\r\nContent-Length: 0\r\n\r\n"
    try:
        ours, theirs = HeadConnection(h11.SERVER), h11.Connection(h11.SERVER)
        if ours._get_io_object(h11.CLIENT, None, READERS) is not read_request:
            return "h11.Connection._get_io_object is not asked for the reader of a new request"
        ours.receive_data(head)
        theirs.receive_data(head)
        got, want = ours.next_event(), theirs.next_event()
        if type(got) is not h11.Request or got != want or list(got.headers) != list(want.headers):
            return f"a request head reads {got!r} here, {want!r} in h11"
    except Exception as exc:  # noqa: BLE001 - any failure means: use h11's own reader
        return f"reading a request head failed: {exc!r}"
    return None
