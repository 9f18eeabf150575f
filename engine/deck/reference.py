"""The deck's JSON Schema (`swarmdeck schema`, for editor completion) and its reference
page, both from the pydantic models in spec.py, so neither can drift from the code.

`python -m engine.deck.reference > docs/deck-reference.md` regenerates the page
(tests/test_deck_reference.py fails when it is stale).
"""

from __future__ import annotations

import inspect
import json
from typing import TYPE_CHECKING, Any

from engine.deck.attention_spec import AttentionSpec
from engine.deck.host_spec import HostPoolSpec, HostSpec
from engine.deck.spec import (
    Backoff,
    DeckSpec,
    Dependency,
    PoolSpec,
    ReadySpec,
    RecordSpec,
    SessionSpec,
    WorkQueue,
    WorkspaceSpec,
)

if TYPE_CHECKING:
    from pydantic import BaseModel

MODELS: tuple[tuple[str, type[BaseModel]], ...] = (
    ("the deck (top level)", DeckSpec),
    ("[pool]", PoolSpec),
    ("[record]", RecordSpec),
    ("[[host]]", HostSpec),
    ("pool = { ... } (in a [[host]])", HostPoolSpec),
    ("[[session]]", SessionSpec),
    ("backoff = { ... } (in a session)", Backoff),
    ("depends_on = [ ... ] (in a session)", Dependency),
    ("queue = { ... } (in a session)", WorkQueue),
    ("attention = { ... } (in a session)", AttentionSpec),
    ("ready = { ... } (in a session)", ReadySpec),
    ('workspace = { ... } (in a session; or "shared" / "isolated")', WorkspaceSpec),
)


def deck_schema() -> dict[str, Any]:
    """What a deck file may hold, as the deck is written (durations as "30s" too)."""
    schema = DeckSpec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "swarmdeck deck"
    schema["required"] = [key for key in schema.get("required", []) if key != "name"]
    return schema


def _kind(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in prop:
        return f"table ({prop['$ref'].rsplit('/', 1)[1]})"
    if "anyOf" in prop:
        return " or ".join(k for k in dict.fromkeys(_kind(p, defs) for p in prop["anyOf"]) if k)
    if "const" in prop:
        return json.dumps(prop["const"])
    if "enum" in prop:
        return " / ".join(json.dumps(v) for v in prop["enum"])
    if prop.get("type") == "array":
        return f"list of {_kind(prop.get('items', {}), defs)}"
    if prop.get("type") == "object":
        return "table of strings" if prop.get("additionalProperties") else "table"
    if prop.get("type") == "null":
        return ""  # TOML has no null: leaving the key out is how it is written
    return str(prop.get("type", "any"))


def _bounds(prop: dict[str, Any]) -> str:
    parts = [prop.get("anyOf", [prop])][0]
    found = []
    for part in parts:
        for key, sign in (("minimum", "≥"), ("maximum", "≤"), ("minLength", "length ≥")):
            if key in part:
                found.append(f"{sign} {part[key]}")
    return ", ".join(found)


def _default(model: type[BaseModel], name: str) -> str:
    info = model.model_fields[name]
    if model is DeckSpec and name == "name":
        return "the file's name"
    if model is SessionSpec and name == "workspace":
        return '`"shared"`'
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        return "empty" if not info.default_factory() else "table"  # type: ignore[call-arg]
    return "none" if info.default is None else f"`{json.dumps(info.default)}`"


def render_markdown() -> str:
    schema = deck_schema()
    defs = schema.get("$defs", {})
    out = [
        "# Deck reference",
        "",
        "Generated from the models in `engine/deck/spec.py` by `python -m engine.deck.reference`;",
        "do not edit. `swarmdeck schema` prints the same as JSON Schema for editors. Durations",
        'are seconds or strings like `"1m30s"`, sizes bytes or strings like `"512MiB"`.',
    ]
    for heading, model in MODELS:
        out += ["", f"## {heading}", "", inspect.cleandoc(model.__doc__ or ""), ""]
        out += ["| key | accepts | default | limits |", "|---|---|---|---|"]
        props = (schema if model is DeckSpec else defs[model.__name__])["properties"]
        for name, info in model.model_fields.items():
            key = info.alias or name
            prop = props[key]
            kind = _kind(prop, defs)
            out.append(f"| `{key}` | {kind} | {_default(model, name)} | {_bounds(prop)} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
