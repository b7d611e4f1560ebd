"""API keys with names, ids and optional limits.

``security.allowed_api_keys`` takes plain strings (as the spec says) and named entries::

    allowed_api_keys:
      - "a-plain-key"                       # id: key-<8 hex of its sha256>, name = id
      - {key: "...", name: alice, requests_per_minute: 60, tokens_per_day: 200000}
    - {key: "...", name: ops, admin: true}  # once any key is admin, only admin keys manage the server

The id is what the usage ledger, metrics and per-user valves store: never the key itself.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_ENTRY_FIELDS = {"key", "name", "id", "requests_per_minute", "tokens_per_day", "admin"}


class ApiKeyConfigError(ValueError):
    def __init__(self, index: int, problem: str) -> None:
        super().__init__(f"entry {index}: {problem}")
        self.index = index


@dataclass(frozen=True)
class ApiKey:
    key: str = field(repr=False)
    id: str
    name: str
    requests_per_minute: int | None = None
    tokens_per_day: int | None = None
    admin: bool = False

    @property
    def limited(self) -> bool:
        return bool(self.requests_per_minute or self.tokens_per_day)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "requests_per_minute": self.requests_per_minute,
                "tokens_per_day": self.tokens_per_day, "admin": self.admin}


def derived_id(key: str) -> str:
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:8]


def _limit(entry: dict[str, Any], name: str, index: int) -> int | None:
    value = entry.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ApiKeyConfigError(index, f"'{name}' must be a whole number >= 1 (or absent for no limit)")
    return value


def parse_entry(raw: Any, index: int) -> ApiKey:
    if isinstance(raw, str):
        key = raw.strip()
        if not key:
            raise ApiKeyConfigError(index, "an empty key is not allowed")
        ident = derived_id(key)
        return ApiKey(key=key, id=ident, name=ident)
    if not isinstance(raw, dict):
        raise ApiKeyConfigError(index, "must be a key string or a mapping {key, name, requests_per_minute, tokens_per_day}")
    unknown = set(raw) - _ENTRY_FIELDS
    if unknown:
        raise ApiKeyConfigError(index, f"unknown field(s) {sorted(unknown)}; known: {sorted(_ENTRY_FIELDS)}")
    raw_key = raw.get("key")
    if not isinstance(raw_key, str) or not raw_key.strip():
        raise ApiKeyConfigError(index, "'key' must be a non-empty string")
    key = raw_key.strip()
    name = raw.get("name")
    if name is not None and (not isinstance(name, str) or not NAME_PATTERN.match(name)):
        raise ApiKeyConfigError(index, "'name' must be 1-64 letters, digits, '_', '.', '@' or '-'")
    ident_raw = raw.get("id") or name or derived_id(key.strip())
    if not isinstance(ident_raw, str) or not NAME_PATTERN.match(ident_raw):
        raise ApiKeyConfigError(index, "'id' must be 1-64 letters, digits, '_', '.', '@' or '-'")
    admin = raw.get("admin", False)
    if not isinstance(admin, bool):
        raise ApiKeyConfigError(index, "'admin' must be true or false")
    return ApiKey(key=key.strip(), id=ident_raw, name=name or ident_raw, admin=admin,
                  requests_per_minute=_limit(raw, "requests_per_minute", index),
                  tokens_per_day=_limit(raw, "tokens_per_day", index))


def parse_keys(entries: Iterable[Any]) -> list[ApiKey]:
    """Every entry parsed; duplicate keys or ids are refused."""
    keys: list[ApiKey] = []
    seen_ids: dict[str, int] = {}
    seen_keys: set[str] = set()
    for i, raw in enumerate(entries or []):
        k = parse_entry(raw, i)
        if k.id in seen_ids:
            raise ApiKeyConfigError(i, f"id '{k.id}' is already used by entry {seen_ids[k.id]}")
        if k.key in seen_keys:
            raise ApiKeyConfigError(i, "the same key is listed twice")
        seen_ids[k.id] = i
        seen_keys.add(k.key)
        keys.append(k)
    return keys


class KeyRing:
    """The configured keys; ``match`` compares in constant time against every key."""

    def __init__(self, keys: list[ApiKey]) -> None:
        self.keys = keys

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def match(self, presented: str) -> ApiKey | None:
        found: ApiKey | None = None
        raw = presented.encode()
        for k in self.keys:  # no early exit: the time does not say which key matched
            if hmac.compare_digest(raw, k.key.encode()):
                found = k
        return found

    @property
    def has_admins(self) -> bool:
        return any(k.admin for k in self.keys)

    def is_admin(self, key: ApiKey | None) -> bool:
        """Whether ``key`` may manage the server: every key when none is marked admin (or auth is off)."""
        if not self.enabled or not self.has_admins:
            return True
        return bool(key and key.admin)

    def by_id(self, ident: str) -> ApiKey | None:
        return next((k for k in self.keys if k.id == ident), None)
