"""Validation errors as report lines a deck's author can act on, with nothing of pydantic's
inside showing: ``<field path>: <what was expected>, got <input>``.

pydantic names the members of a union in its locations (``max_parallel.constrained-int``,
``max_parallel.literal['auto']``): those tags are dropped, and the errors of one field
are merged into one line (``max_parallel: expected an integer or 'auto', got 'lots'``).
Sessions are numbered from 1 as a reader counts ``[[session]]`` tables, and named when the
name is readable: ``session[2] (build).timeout``.
"""

from __future__ import annotations

import difflib
import re
import reprlib
from typing import TYPE_CHECKING, get_args, get_origin

from pydantic import BaseModel

from engine.deck.checks import VERBATIM

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

__all__ = ["problem_lines"]

_EXPECTATIONS = {
    "int_type": "expected an integer",
    "float_type": "expected a number",
    "string_type": "expected a string",
    "bool_type": "expected true or false",
    "list_type": "expected an array",
    "dict_type": "expected a table",
    "model_type": "expected a table",
    "model_attributes_type": "expected a table",
    "is_instance_of": "expected a string",
    "greater_than_equal": "expected at least {ge}",
    "greater_than": "expected more than {gt}",
    "less_than_equal": "expected at most {le}",
    "less_than": "expected less than {lt}",
    "string_too_short": "expected at least {min_length} character(s)",
    "too_short": "expected at least {min_length} item(s)",
    "literal_error": "expected {expected}",
}
_TAG = re.compile(r"[\w-]+\[.*\]|constrained-\w+|int|str|float|bool|none|[A-Z]\w*|\w+-[\w-]+")
"""How pydantic names a union member in a location: never a deck key where one can be."""
_shown = reprlib.Repr()
_shown.maxstring = _shown.maxother = 60


def problem_lines(errors: list[ErrorDetails], raw: object, root: type[BaseModel]) -> list[str]:
    """One line per field at fault, in pydantic's order; `raw` is the data as written
    (for session names), `root` the model it was validated as."""
    grouped: dict[tuple[int | str, ...], list[ErrorDetails]] = {}
    for error in errors:
        loc = error["loc"]
        if error["type"] == "extra_forbidden":  # the last key is the author's, whatever it is
            where = (*_field_loc(loc[:-1], root), loc[-1])
        else:
            where = _field_loc(loc, root)
        grouped.setdefault(where, []).append(error)
    return [_line(loc, group, raw, root) for loc, group in grouped.items()]


def _field_loc(loc: tuple[int | str, ...], root: type[BaseModel]) -> tuple[int | str, ...]:
    """The location without union tags: a tag can only follow a field of a model."""
    kept: list[int | str] = []
    model: type[BaseModel] | None = root
    after_field = False
    for key in loc:
        if isinstance(key, str) and after_field and _TAG.fullmatch(key):
            continue
        kept.append(key)
        after_field = False
        if isinstance(key, str) and model is not None:
            field = {f.alias or n: f for n, f in model.model_fields.items()}.get(key)
            after_field = field is not None and get_origin(field.annotation) is not dict
            model = _model_in(field.annotation) if field is not None else None
    return tuple(kept)


def _line(
    loc: tuple[int | str, ...], group: list[ErrorDetails], raw: object, root: type[BaseModel]
) -> str:
    where, first = _where(loc, raw), group[0]
    if first["type"] == "extra_forbidden":
        return f"{where}: {_unknown_key(loc, root)}"
    if first["type"] == "missing":
        return f"{where}: required key is missing"
    told = [e for e in group if e["type"] == "value_error" or e["type"] in VERBATIM]
    if told:  # our own validators say everything, once
        return f"{where}: {_verbatim(told[0])}"
    expected = " or ".join(dict.fromkeys(_expected(e) for e in group))
    return f"{where}: expected {expected}, got {_shown.repr(first['input'])}"


def _where(loc: tuple[int | str, ...], raw: object) -> str:
    """``("session", 1, "cwd")`` → ``session[2] (build).cwd``."""
    parts: list[str] = []
    node = raw
    for key in loc:
        if isinstance(key, int):
            node = node[key] if isinstance(node, list) and key < len(node) else None
            name = node.get("name") if isinstance(node, dict) else None
            label = f"[{key + 1}]" + (f" ({name})" if isinstance(name, str) else "")
            parts[-1:] = [(parts[-1] if parts else "") + label]
        else:
            node = node.get(key) if isinstance(node, dict) else None
            parts.append(str(key))
    return ".".join(parts) or "deck"


def _verbatim(error: ErrorDetails) -> str:
    if error["type"] == "value_error":
        return str(error.get("ctx", {})["error"])
    return error["msg"]


def _expected(error: ErrorDetails) -> str:
    """What was expected, without "expected " (so alternatives join with "or")."""
    kind, context = error["type"], error.get("ctx", {})
    expected = _EXPECTATIONS.get(kind)
    if expected is None:
        expected = "expected " + error["msg"].removeprefix("Input should be ")
    return expected.format(**context).removeprefix("expected ")


def _unknown_key(loc: tuple[int | str, ...], root: type[BaseModel]) -> str:
    model = _model_at(loc[:-1], root)
    if model is None:
        return "unknown key"
    allowed = [field.alias or name for name, field in model.model_fields.items()]
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown key{hint} (allowed: {', '.join(allowed)})"


def _model_at(loc: tuple[int | str, ...], root: type[BaseModel]) -> type[BaseModel] | None:
    """The model validating the table at `loc`, found from the field annotations."""
    model: type[BaseModel] | None = root
    for key in loc:
        if model is None or isinstance(key, int):
            continue
        fields = {field.alias or name: field for name, field in model.model_fields.items()}
        field = fields.get(key)
        model = _model_in(field.annotation) if field is not None else None
    return model


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next(filter(None, map(_model_in, get_args(annotation))), None)
