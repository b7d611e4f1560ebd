"""Answers framed without h11's event objects: the bytes and the connection states h11 would give.

uvicorn sends every answer through h11: a ``Response`` event (each header checked against the HTTP grammar,
lower-cased, then scanned again to find the framing), a ``Data`` event per body part and an ``EndOfMessage``,
each through h11's state machine — about a tenth of the server's work for a small JSON answer. For the usual
answer — a status from 200 to 599 but 204 and 304, at most one ``Content-Length`` (none: a stream, sent chunked),
no ``Transfer-Encoding`` or ``Host`` header nor ``Connection: close``, to a keep-alive HTTP/1.1 request that is neither HEAD
nor CONNECT and proposes no protocol switch — ``h11_protocol`` frames it with this module instead:

- the head is written as h11 writes it (``HTTP/1.1 <status> <reason>``, the headers in order as given), each
  header checked with h11's own patterns (a pair seen valid is remembered: the same few come back every time);
- the body parts are counted against the ``Content-Length`` as h11's writer counts them (the same errors, and
  the connection ends in h11's ERROR state as after a failed ``send``), or framed as h11's chunked writer frames
  them (h11 adds ``Transfer-Encoding: chunked`` as the last header: so does this module);
- after the last part, h11's state machine takes the ``Response`` and ``EndOfMessage`` transitions it would have
  taken, so keep-alive, pipelining and the next request go on exactly as before.

Anything else (a header that fails a pattern too) goes through h11 as always, and it answers as it always does.
"""

from __future__ import annotations

from typing import Any

import h11
from h11._headers import CONTENT_LENGTH_MAX_DIGITS, _content_length_re, _field_name_re, _field_value_re
from uvicorn.protocols.http.h11_impl import STATUS_PHRASES

_SPECIAL = frozenset({b"transfer-encoding", b"host"})  # (and a Connection header that asks to close)
# header items (name, value) that matched h11's patterns -> (their line, the Content-Length they give or -1); bounded:
# a route that echoes values into its headers cannot grow it without end
_LINES: dict[tuple[bytes, bytes], tuple[bytes, int]] = {}
_LINES_MAX = 1024
_UNKEPT = frozenset({b"set-cookie", b"authorization", b"x-api-key"})  # checked every time: no credential is kept


def _line(item: Any) -> tuple[bytes, int] | None:
    """The head line of one header item and its Content-Length (-1: another header), or None: h11 must frame it."""
    if type(item) is not tuple or len(item) != 2:
        return None
    name, value = item
    if type(name) is not bytes or type(value) is not bytes or _field_name_re.fullmatch(name) is None:
        return None
    lower = name.lower()
    length = -1
    if lower == b"content-length":
        if _content_length_re.fullmatch(value) is None or len(value) > CONTENT_LENGTH_MAX_DIGITS:
            return None
        length = int(value)
    elif lower in _SPECIAL or _field_value_re.fullmatch(value) is None:
        return None
    elif lower == b"connection" and b"close" in (token.strip() for token in value.lower().split(b",")):
        return None  # (h11 then ends the connection after this answer)
    known = (b"%s: %s\r\n" % (name, value), length)
    if lower not in _UNKEPT:
        if len(_LINES) >= _LINES_MAX:
            _LINES.clear()
        _LINES[item] = known
    return known


class PlainBody:
    """An answer whose head is written: frames its body (chunked, or counted against its Content-Length), then
    ends it in h11."""

    __slots__ = ("head", "length", "sent")

    def __init__(self, head: bytes, length: int) -> None:
        self.head = head
        self.length = length  # -1: chunked
        self.sent = 0

    def frame(self, conn: h11.Connection, body: Any) -> Any:
        """What goes on the wire for this body part (h11's writers: a chunk, or the part itself)."""
        if self.length < 0:
            return b"%x\r\n%s\r\n" % (len(body), body) if body else b""
        sent = self.sent + len(body)
        if sent > self.length:
            conn._process_error(h11.SERVER)
            raise h11.LocalProtocolError("Too much data for declared Content-Length")
        self.sent = sent
        return body

    def end(self, conn: h11.Connection) -> bytes:
        """The end of the message on the wire; h11's states moved as its Response and EndOfMessage would."""
        if self.length >= 0 and self.sent != self.length:
            conn._process_error(h11.SERVER)
            raise h11.LocalProtocolError("Too little data for declared Content-Length")
        state = conn._cstate
        before = dict(state.states)
        state.process_event(h11.SERVER, h11.Response)
        state.process_event(h11.SERVER, h11.EndOfMessage)
        conn.client_is_waiting_for_100_continue = False
        conn._respond_to_state_changes(before)
        return b"0\r\n\r\n" if self.length < 0 else b""


def plain_start(conn: h11.Connection, method: str, message: Any, lines: bytes) -> PlainBody | None:
    """The answer ``message`` (``http.response.start``) starts, with its head (``lines`` added before the blank line
    that ends it), when this module can frame it; else None (h11 frames it)."""
    status = message["status"]
    if (type(status) is not int or not 200 <= status < 600 or status in (204, 304) or method in ("HEAD", "CONNECT")
            or conn.our_state is not h11.SEND_RESPONSE or not conn._cstate.keep_alive
            or conn._cstate.pending_switch_proposals):
        return None
    length = -1
    parts = [b"HTTP/1.1 %d %s\r\n" % (status, STATUS_PHRASES[status])]
    for item in message.get("headers") or ():
        try:
            known = _LINES.get(item)
        except TypeError:  # (not hashable: a list)
            return None
        if known is None:
            known = _line(item)
            if known is None:
                return None
        if known[1] >= 0:
            if length >= 0:  # a second Content-Length
                return None
            length = known[1]
        parts.append(known[0])
    if length < 0:  # a body of unknown length: h11 sends it chunked, saying so in a last header of its own
        parts.append(b"Transfer-Encoding: chunked\r\n")
    parts.append(lines)
    parts.append(b"\r\n")
    return PlainBody(b"".join(parts), length)


def problem() -> str | None:
    """Why this module cannot frame answers in h11's stead with the installed h11 (None: it can). Checked once,
    before the first connection (``h11_protocol``): the connection internals it moves are there, and two answers
    (one with a Content-Length, one chunked) framed here give h11's own bytes and states."""
    from lollms_server import shortcuts

    found = shortcuts.first(
        shortcuts.missing(h11.Connection, "_process_error", "_respond_to_state_changes"),
        shortcuts.unset("h11.Connection.__init__", h11.Connection.__init__, "_cstate", "client_is_waiting_for_100_continue"))
    if found:
        return found
    request = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    answers = ([(b"content-length", b"2"), (b"content-type", b"application/json")], [(b"content-type", b"text/plain")])
    try:
        ours, theirs = h11.Connection(h11.SERVER), h11.Connection(h11.SERVER)
        for headers in answers:
            for conn in (ours, theirs):
                conn.receive_data(request)
                conn.next_event()
                conn.next_event()  # (EndOfMessage)
            plain = plain_start(ours, "GET", {"status": 200, "headers": headers}, b"")
            if plain is None:
                return "a plain answer is not framed here"
            wire = plain.head + plain.frame(ours, b"ok") + plain.end(ours)
            want = b"".join(theirs.send(event) or b"" for event in (
                h11.Response(status_code=200, headers=headers, reason=STATUS_PHRASES[200]), h11.Data(data=b"ok"),
                h11.EndOfMessage()))
            if wire != want:
                return f"an answer is framed {wire!r} here, {want!r} by h11"
            if (ours.our_state, ours.their_state) != (theirs.our_state, theirs.their_state):
                return "the connection states after an answer differ from h11's"
            ours.start_next_cycle()
            theirs.start_next_cycle()
    except Exception as exc:  # noqa: BLE001 - any failure means: h11 frames every answer
        return f"framing an answer failed: {exc!r}"
    return None
