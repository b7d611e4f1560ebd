"""The ``lollms.head_lines`` ASGI extension: header lines an app hands to the server already valid.

A server that offers it (``h11_protocol.BoundedHeadH11Protocol``) sets ``scope["extensions"][HEAD_LINES_EXTENSION]``;
an ``http.response.start`` message may then carry ``HEAD_LINES_KEY``: bytes of complete ``name: value\\r\\n`` lines,
valid by construction and taking no part in framing (no Content-Length, Transfer-Encoding or Connection), which
the server adds to the response head as they are. Without the extension the same headers go in ``headers``.
"""

from __future__ import annotations

HEAD_LINES_EXTENSION = "lollms.head_lines"
HEAD_LINES_KEY = "lollms.head_lines"
