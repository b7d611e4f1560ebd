"""Generation parameters a binding understands, declared once in its card and served by ``list_bindings``.

A card lists them under ``generation_parameters``, keyed by name. Parameters many backends share
(``temperature``, ``max_tokens``…) are described once here in ``COMMON``; a card names them and may
override any field. ``instance_default`` names the instance setting that gives a per-instance default; ``strict: false``
keeps a parameter out of the request checks (the binding accepts other shapes too).

    generation_parameters:
      temperature: {}                                   # the common declaration
      max_tokens: {default: 512}                        # common, with another default
      beam_size: {type: integer, minimum: 1, maximum: 20, default: 5, instance_default: beam_size,
                  help: "Beam width; 1 = greedy."}

The same declarations check request parameters before generation (wrong type, out of range, not one of
the choices -> 400). Parameters a binding does not declare pass through untouched.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lollms_server.core.errors import BadRequestError

ParamType = Literal["integer", "number", "string", "boolean", "array", "object"]


class GenerationParameter(BaseModel):
    """One generation parameter: the shape ``list_bindings`` serves (``instance_default`` is not served)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    type: ParamType
    default: Any = None
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    choices: Optional[list[Any]] = None
    help: str = ""
    generation_types: list[str] = Field(default_factory=list)
    instance_default: Optional[str] = Field(default=None, exclude=True)
    strict: bool = Field(default=True, exclude=True)  # False: the binding also takes other shapes; not checked

    def public(self, instance_values: dict[str, Any] | None = None) -> dict[str, Any]:
        data = self.model_dump()
        if instance_values is not None and self.instance_default:
            value = instance_values.get(self.instance_default)
            if value is not None:
                data["default"] = value
        return data

    def check(self, value: Any) -> None:
        """Raise BadRequestError when ``value`` does not fit this declaration (None always fits)."""
        if value is None or not self.strict:
            return
        where = f"parameters.{self.name}"
        if not _type_ok(self.type, value):
            raise BadRequestError(f"{where} must be {_TYPE_WORDS[self.type]} (got {value!r})")
        if self.type in ("integer", "number"):
            if self.minimum is not None and value < self.minimum:
                raise BadRequestError(f"{where} must be at least {_num(self.minimum)} (got {value!r})")
            if self.maximum is not None and value > self.maximum:
                raise BadRequestError(f"{where} must be at most {_num(self.maximum)} (got {value!r})")
        if self.choices is not None and value not in self.choices:
            raise BadRequestError(f"{where} must be one of {', '.join(map(str, self.choices))} (got {value!r})")


_TYPE_WORDS = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
               "array": "a list", "object": "an object"}


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == "integer":
        return isinstance(value, int)
    if kind == "number":
        return isinstance(value, (int, float))
    if kind == "string":
        return isinstance(value, str)
    if kind == "array":
        return isinstance(value, list)
    return isinstance(value, dict)


def _p(type_: ParamType, help_: str, **kw: Any) -> dict[str, Any]:
    return {"type": type_, "help": help_, **kw}


# Parameters many bindings share: one description each.
COMMON: dict[str, dict[str, Any]] = {
    "max_tokens": _p("integer", "Most tokens to generate.", minimum=1),
    "temperature": _p("number", "Sampling temperature: higher is more varied, 0 is (nearly) deterministic.",
                      minimum=0.0, maximum=2.0),
    "top_p": _p("number", "Nucleus sampling: keep the smallest set of tokens whose probability reaches top_p.",
                minimum=0.0, maximum=1.0),
    "top_k": _p("integer", "Sample only among the k most likely tokens (0 = no limit).", minimum=0),
    "min_p": _p("number", "Drop tokens less likely than min_p times the most likely one.", minimum=0.0, maximum=1.0),
    "typical_p": _p("number", "Locally typical sampling threshold (1 = off).", minimum=0.0, maximum=1.0),
    "repeat_penalty": _p("number", "Penalty for repeating recent tokens (1 = none).", minimum=0.0, maximum=2.0),
    "repeat_last_n": _p("integer", "How many recent tokens the repeat penalty looks at.", minimum=0),
    "presence_penalty": _p("number", "Penalty for tokens already present (encourages new topics).",
                           minimum=-2.0, maximum=2.0),
    "frequency_penalty": _p("number", "Penalty growing with how often a token already appeared.",
                            minimum=-2.0, maximum=2.0),
    "seed": _p("integer", "Random seed for reproducible sampling."),
    "stop": _p("array", "Stop sequences: generation ends before any of them."),
    "width": _p("integer", "Image width in pixels.", minimum=1),
    "height": _p("integer", "Image height in pixels.", minimum=1),
    "n": _p("integer", "Number of outputs to generate.", minimum=1, maximum=16),
}


def parse_declarations(raw: Any, card_generation_types: list[str]) -> list[GenerationParameter]:
    """The card's ``generation_parameters`` (a mapping name -> fields) as checked declarations."""
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise ValueError("generation_parameters must be a mapping of parameter name -> declaration")
    out: list[GenerationParameter] = []
    for name, fields in raw.items():
        fields = {} if fields is None else fields
        if not isinstance(fields, dict):
            raise ValueError(f"generation_parameters.{name} must be a mapping")
        base = dict(COMMON.get(str(name), {}))
        if not base and "type" not in fields:
            raise ValueError(f"generation_parameters.{name}: give its 'type' (it is not one of the common parameters)")
        decl = {**base, **fields, "name": str(name)}
        decl.setdefault("generation_types", [t for t in card_generation_types if t != "embed"])  # no sampling in embeddings
        try:
            out.append(GenerationParameter.model_validate(decl))
        except ValidationError as exc:
            e = exc.errors()[0]
            raise ValueError(f"generation_parameters.{name}.{'.'.join(map(str, e['loc']))}: {e['msg']}") from None
    return out


def check_parameters(declared: list[GenerationParameter], params: dict[str, Any], generation_type: str) -> None:
    """400 for a request parameter that contradicts the binding's declaration of it."""
    for decl in declared:
        if decl.name in params and (not decl.generation_types or generation_type in decl.generation_types):
            value = params[decl.name]
            if decl.name == "stop" and isinstance(value, str):
                continue
            decl.check(value)
