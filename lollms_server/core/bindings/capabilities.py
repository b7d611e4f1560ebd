"""One source of truth for a binding's capabilities: the card, or the class, never two disagreeing copies.

Checked once, at registration. A capability written only in the card is set on the class; one written
only on the class is copied into the card (so ``list_bindings`` shows it); written in both, they must
agree, or the binding type does not load and ``load_errors`` says which values differ.
"""

from __future__ import annotations

from typing import Any

from lollms_server.core.bindings.base import Binding
from lollms_server.core.bindings.card import BindingCard

# card field -> class attribute
PAIRS: dict[str, str] = {
    "supports_streaming": "supports_streaming",
    "generation_types": "generation_types",
    "supported_input_modalities": "input_modalities",
    "supported_output_modalities": "output_modalities",
    "supports_tools": "supports_tools",
}


_DERIVED = "_capabilities_from_card"


class CapabilityMismatch(ValueError):
    pass


def declared_on_class(cls: type[Binding], attr: str) -> bool:
    """True when a class between ``cls`` and Binding sets ``attr`` as a plain value (not a property)."""
    for klass in cls.__mro__:
        if klass is Binding:
            return False
        if attr in klass.__dict__.get(_DERIVED, ()):
            continue  # set from a card at registration, not written by the author
        value = klass.__dict__.get(attr)
        if value is not None and not isinstance(value, (property, staticmethod, classmethod)) and not callable(value):
            return True
    return False


def _canonical(value: Any) -> Any:
    return value if isinstance(value, bool) else sorted(value)


def reconcile(card: BindingCard, cls: type[Binding]) -> None:
    """Make card and class agree (derive the missing side); CapabilityMismatch when both say different things."""
    for field, attr in PAIRS.items():
        in_card = field in card.model_fields_set
        on_class = declared_on_class(cls, attr)
        class_value = getattr(cls, attr) if not isinstance(getattr(cls, attr, None), property) else None
        if in_card and on_class and class_value is not None:
            if _canonical(getattr(card, field)) != _canonical(class_value):
                raise CapabilityMismatch(
                    f"binding type '{card.type_name}': the card says {field} = {_canonical(getattr(card, field))} but "
                    f"class {cls.__name__} says {attr} = {_canonical(class_value)}; declare it once (in the card)")
        elif in_card:
            card_value = getattr(card, field)
            setattr(cls, attr, bool(card_value) if isinstance(card_value, bool) else frozenset(card_value))
            setattr(cls, _DERIVED, frozenset(cls.__dict__.get(_DERIVED, ())) | {attr})
        elif class_value is not None:
            setattr(card, field, _canonical(class_value))
