"""Secret masking: no secret value ever leaves the server, in responses, logs or error messages."""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any, Iterable, Iterator, Mapping

MASK = "********"


class SecretRedactor:
    """Knows every secret value the server holds and replaces it wherever it appears in text."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._scoped: dict[str, int] = {}  # values known only while a request runs (reference counted)
        self._lock = threading.Lock()

    def add(self, *values: Any) -> None:
        with self._lock:
            for v in values:
                if isinstance(v, (list, tuple, set)):
                    self._values.update(str(x) for x in v if x and len(str(x)) >= 4)
                elif v and len(str(v)) >= 4:
                    self._values.add(str(v))

    @contextlib.contextmanager
    def scoped(self, *values: Any) -> Iterator[None]:
        """Mask ``values`` while the block runs (e.g. a key a request brought), then forget them."""
        kept = [str(v) for v in values if v and len(str(v)) >= 4]
        with self._lock:
            for v in kept:
                self._scoped[v] = self._scoped.get(v, 0) + 1
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

    def redact(self, text: str) -> str:
        if not text:
            return text
        with self._lock:
            values = sorted(self._values | set(self._scoped), key=len, reverse=True)
        for v in values:
            if v in text:
                text = text.replace(v, MASK)
        return text

    def redact_any(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, Mapping):
            return {k: self.redact_any(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self.redact_any(v) for v in obj]
        return obj


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
        redacted = REDACTOR.redact(message)
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = REDACTOR.redact(exc_text)
            record.exc_info = None
        return True


def install_log_redaction() -> None:
    """Attach the redacting filter to every handler of the root logger (idempotent)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
