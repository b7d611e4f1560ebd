"""Secret masking: no secret value ever leaves the server, in responses, logs or error messages.

``REDACTOR.redact`` is for everything a client sees: it masks every known secret, the shortened quotes of
a secret that upstream APIs print (``sk-qzvOPE****xc``: a prefix and a suffix of a known secret around
stars or dots), and turns absolute paths of this host into paths relative to the configuration or
project folder. Logs are for the operator: they get the secrets masked but keep the real paths.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

MASK = "********"
# a token, then at least two stars / three dots / an ellipsis, then maybe more of the token
_PARTIAL_QUOTE = re.compile(r"([A-Za-z0-9_\-]+)(?:\*{2,}|\.{3,}|\u2026|\u2022{2,})([A-Za-z0-9_\-]*)")


class SecretRedactor:
    """Knows every secret value the server holds and replaces it wherever it appears in text."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._scoped: dict[str, int] = {}  # values known only while a request runs (reference counted)
        self._roots: dict[str, str] = {}  # absolute folder of this host -> how clients see it
        self._lock = threading.Lock()
        self._known: list[str] | None = []  # known_secrets(), kept until a value is added or forgotten

    def add_path_root(self, folder: Path, shown_as: str) -> None:
        """Show ``folder`` (and what is below it) as ``shown_as`` in client-facing text; "" = relative."""
        for variant in {str(folder), str(folder.resolve())}:
            if len(variant) > 1:
                with self._lock:
                    self._roots[variant.rstrip(os.sep)] = shown_as

    def add(self, *values: Any) -> None:
        with self._lock:
            before = len(self._values)
            for v in values:
                if isinstance(v, (list, tuple, set)):
                    self._values.update(str(x) for x in v if x and len(str(x)) >= 4)
                elif v and len(str(v)) >= 4:
                    self._values.add(str(v))
            if len(self._values) != before:  # (a value known already: the sorted list stays right)
                self._known = None

    @contextlib.contextmanager
    def scoped(self, *values: Any) -> Iterator[None]:
        """Mask ``values`` while the block runs (e.g. a key a request brought), then forget them."""
        kept = [str(v) for v in values if v and len(str(v)) >= 4]
        if not kept:  # the usual request: it brought no key of its own
            yield
            return
        with self._lock:
            for v in kept:
                self._scoped[v] = self._scoped.get(v, 0) + 1
            self._known = None
        try:
            yield
        finally:
            with self._lock:
                for v in kept:
                    left = self._scoped.get(v, 1) - 1
                    if left <= 0:
                        self._scoped.pop(v, None)
                    else:
                        self._scoped[v] = left
                self._known = None

    def known_secrets(self) -> list[str]:
        """Every value to mask, longest first (do not modify the list)."""
        known = self._known
        if known is None:
            with self._lock:
                known = self._known = sorted(self._values | set(self._scoped), key=len, reverse=True)
        return known

    def mask_secrets(self, text: str) -> str:
        """Mask every known secret and every partial quote of one (for logs and clients)."""
        if not text:
            return text
        values = self.known_secrets()
        for v in values:
            if v in text:
                text = text.replace(v, MASK)
        if values and ("**" in text or "..." in text or "\u2026" in text or "\u2022\u2022" in text):
            text = _PARTIAL_QUOTE.sub(lambda m: MASK if _quotes_a_secret(m, values) else m.group(0), text)
        return text

    def relative_paths(self, text: str) -> str:
        """Replace absolute folders of this host by their relative form (``shown_as`` or nothing)."""
        if not text or os.sep not in text:
            return text
        with self._lock:
            roots = sorted(self._roots.items(), key=lambda kv: len(kv[0]), reverse=True)
        for root, shown in roots:
            if root in text:
                text = text.replace(root + os.sep, (shown + os.sep) if shown else "")
                itself = (shown or ".").replace("\\", "\\\\")  # a literal replacement for re.sub
                text = re.sub(re.escape(root) + r"(?![\w.\-])", itself, text)
        return text

    def redact(self, text: str) -> str:
        """Client-facing text: secrets (whole or partly quoted) masked, host paths made relative."""
        return self.relative_paths(self.mask_secrets(text))

    def redact_any(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, Mapping):
            return {k: self.redact_any(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self.redact_any(v) for v in obj]
        return obj


def _quotes_a_secret(match: re.Match[str], secrets: list[str]) -> bool:
    """Whether ``head****tail`` shows the beginning (and maybe the end) of a known secret."""
    head, tail = match.group(1), match.group(2)
    return any(
        len(secret) >= 8 and len(head) >= 2 and secret.startswith(head) and secret.endswith(tail)
        and len(head) + len(tail) < len(secret)
        for secret in secrets
    )


class StreamMasker:
    """Masks secrets in text that arrives in pieces: holds back only a tail that could begin a secret."""

    def __init__(self, redactor: "SecretRedactor") -> None:
        self.redactor = redactor
        self.pending = ""

    def feed(self, piece: str) -> str:
        if not piece:
            return piece
        text = self.redactor.mask_secrets(self.pending + piece)
        keep = _longest_secret_start(text, self.redactor.known_secrets())
        self.pending = text[len(text) - keep:] if keep else ""
        return text[: len(text) - keep] if keep else text

    def flush(self) -> str:
        out, self.pending = self.redactor.mask_secrets(self.pending), ""
        return out


def _longest_secret_start(text: str, secrets: list[str]) -> int:
    """Length of the longest end of ``text`` that is the beginning of a secret (0 when none)."""
    best = 0
    for secret in secrets:
        for n in range(min(len(secret) - 1, len(text)), best, -1):
            if secret.startswith(text[-n:]):
                best = n
                break
    return best


REDACTOR = SecretRedactor()


def secret_keys(schema: Mapping[str, Any], prefix: str = "") -> set[str]:
    """Dotted names of every field marked ``secret: true`` in a ConfigGuard schema."""
    found: set[str] = set()
    for key, definition in schema.items():
        if not isinstance(definition, Mapping):
            continue
        if definition.get("type") == "section":
            found |= secret_keys(definition.get("schema") or {}, f"{prefix}{key}.")
        elif definition.get("secret"):
            found.add(f"{prefix}{key}")
    return found


def mask_values(values: Mapping[str, Any], secrets: Iterable[str], prefix: str = "") -> dict[str, Any]:
    """Copy of ``values`` with every secret field replaced by MASK (None stays None)."""
    secret_set = set(secrets)
    out: dict[str, Any] = {}
    for k, v in values.items():
        full = f"{prefix}{k}"
        if full in secret_set:
            out[k] = None if v in (None, "", []) else MASK
        elif isinstance(v, Mapping):
            out[k] = mask_values(v, secret_set, f"{full}.")
        else:
            out[k] = v
    return out


def collect_secret_values(values: Mapping[str, Any], secrets: Iterable[str]) -> list[Any]:
    out: list[Any] = []
    for name in secrets:
        cur: Any = values
        for part in name.split("."):
            cur = cur.get(part) if isinstance(cur, Mapping) else None
        if cur:
            out.append(cur)
    return out


class RedactingFilter(logging.Filter):
    """Logging filter that masks secret values in every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not hide the record
            message = str(record.msg)
        redacted = REDACTOR.mask_secrets(message)
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = REDACTOR.mask_secrets(exc_text)
            record.exc_info = None
        return True


def install_log_redaction() -> None:
    """Attach the redacting filter to every handler of the root logger (idempotent)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
