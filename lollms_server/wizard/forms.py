"""Schema -> prompts: parse and validate one value, ask one field, edit a whole section.

Every prompt uses questionary's ``unsafe_ask`` so Ctrl+C raises KeyboardInterrupt, which the
wizard turns into "cancelled, nothing changed". Validation errors are shown at the prompt and the
question is asked again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import questionary
from questionary import Choice

from lollms_server.core.guarded_config import ConfigFileError, validate_values
from lollms_server.core.secrets import MASK

TRUE_WORDS = {"true", "yes", "y", "on", "1"}
FALSE_WORDS = {"false", "no", "n", "off", "0"}
NULL_WORDS = {"null", "none", "~"}
BACK = "__back__"
NOT_SET = "__not_set__"  # questionary replaces a None choice value by the title


def parse_value(definition: Mapping[str, Any], text: str) -> Any:
    """Turn the operator's text into a value of the field's schema type (ValueError when it cannot)."""
    type_name = str(definition.get("type", "str"))
    raw = text.strip()
    if definition.get("nullable") and (raw == "" or raw.lower() in NULL_WORDS):
        return None
    if type_name == "bool":
        if raw.lower() in TRUE_WORDS:
            return True
        if raw.lower() in FALSE_WORDS:
            return False
        raise ValueError(f"expected true or false, got '{raw}'")
    if type_name == "int":
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"expected a whole number, got '{raw}'") from None
    if type_name == "float":
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"expected a number, got '{raw}'") from None
    if type_name == "list":
        if raw.startswith("["):
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a valid JSON list: {exc.msg}") from None
            if not isinstance(value, list):
                raise ValueError("expected a list")
            return value
        return [part.strip() for part in raw.split(",") if part.strip()]
    return text if type_name == "str" else raw


def check_value(key: str, definition: Mapping[str, Any], value: Any) -> str | None:
    """The schema's verdict on ``value`` (None when valid, else the problem)."""
    try:
        validate_values(Path("<input>"), {key: dict(definition)}, {key: value}, allow_unknown=False)
    except ConfigFileError as exc:
        return exc.problem
    return None


def parse_and_check(key: str, definition: Mapping[str, Any], text: str) -> Any:
    value = parse_value(definition, text)
    problem = check_value(key, definition, value)
    if problem:
        raise ValueError(problem)
    return value


def show_value(value: Any, secret: bool) -> str:
    if secret:
        return "(not set)" if value in (None, "", []) else MASK
    if value is None:
        return "(not set)"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "(empty)"
    return str(value)


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def select(message: str, choices: Sequence[Choice | str], default: Any = None, instruction: str | None = None) -> Any:
    """Arrow-key menu; typing filters the list."""
    return questionary.select(
        message, choices=list(choices), default=default, use_search_filter=True, use_jk_keys=False,
        instruction=instruction or "(arrows to move, type to filter, Enter to choose)",
    ).unsafe_ask()


def confirm(message: str, default: bool = True) -> bool:
    return bool(questionary.confirm(message, default=default).unsafe_ask())


def text(message: str, default: str = "", validate: Any = None, instruction: str | None = None) -> str:
    return str(questionary.text(message, default=default, validate=validate, instruction=instruction).unsafe_ask())


def note(message: str, style: str = "fg:ansicyan") -> None:
    questionary.print(message, style=style)


def _validator(key: str, definition: Mapping[str, Any]) -> Any:
    def validate(answer: str) -> bool | str:
        try:
            parse_and_check(key, definition, answer)
        except ValueError as exc:
            return str(exc)
        return True

    return validate


def ask_field(key: str, definition: Mapping[str, Any], current: Any) -> Any:
    """Ask one field and return its new value (validated against the definition)."""
    help_text = str(definition.get("help") or "")
    if help_text:
        note(f"  {key}: {help_text}", style="fg:ansibrightblack")
    options = definition.get("options")
    nullable = bool(definition.get("nullable"))
    type_name = definition.get("type")
    if options:
        choices = [Choice(str(o), value=o) for o in options]
        if nullable:
            choices.append(Choice("(not set)", value=NOT_SET))
        default = next((c for c in choices if c.value == (NOT_SET if current is None else current)), None)
        picked = select(key, choices, default=default)
        return None if picked == NOT_SET else picked
    if type_name == "bool":
        return confirm(key, default=bool(current))
    if definition.get("secret") and type_name == "str":
        return ask_secret(key, definition, current)
    hint = "comma-separated" if type_name == "list" else None
    if nullable:
        hint = ((hint + "; ") if hint else "") + "empty = not set"
    answer = text(key, default=as_text(current), validate=_validator(key, definition), instruction=hint)
    return parse_and_check(key, definition, answer)


def ask_secret(key: str, definition: Mapping[str, Any], current: Any) -> Any:
    """Hidden input; an empty answer keeps the current value (or leaves it unset)."""
    nullable = bool(definition.get("nullable"))
    if current not in (None, ""):
        action = select(f"{key} is set", [Choice("keep it", "keep"), Choice("change it", "change")]
                        + ([Choice("clear it", "clear")] if nullable else []))
        if action == "keep":
            return current
        if action == "clear":
            return None

    def validate(answer: str) -> bool | str:
        if answer == "" and (nullable or current not in (None, "")):
            return True
        problem = check_value(key, definition, answer)
        return problem or True

    answer = str(questionary.password(f"{key} (hidden; empty = {'keep' if current else 'not set'})",
                                      validate=validate).unsafe_ask())
    if answer == "":
        return current if current not in (None, "") else None
    return answer


def edit_fields(title: str, schema: Mapping[str, Any], values: dict[str, Any], *, skip: Sequence[str] = ()) -> dict[str, Any]:
    """Menu of the fields of one schema level; returns the edited copy when the operator chooses Done."""
    edited = dict(values)
    fields = [k for k, d in schema.items() if k != "__version__" and k not in skip and isinstance(d, Mapping)
              and d.get("type") != "section"]
    last: Any = None
    while True:
        choices = [Choice(f"{k} = {show_value(edited.get(k), bool(schema[k].get('secret')))}", value=k) for k in fields]
        choices.append(Choice("Done", value=BACK))
        default = next((c for c in choices if c.value == last), None)
        picked = select(title, choices, default=default)
        if picked == BACK:
            return edited
        edited[picked] = ask_field(picked, schema[picked], edited.get(picked))
        last = picked
