"""`swarmdeck run DECK SESSION…`: the deck cut down to the named sessions and every
session they depend on (directly or not), so what they wait for still runs. Naming them
is the operator's start: a kept session with `autostart = false` starts like the others."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from engine.errors import DeckError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from engine.deck.spec import DeckSpec

__all__ = ["only_sessions"]


def only_sessions(deck: DeckSpec, names: Sequence[str]) -> DeckSpec:
    """`deck` with only `names` (template names, as in the file) and their dependencies,
    in file order; an unknown name raises DeckError naming the deck's sessions."""
    if not names:
        return deck
    known = {spec.name: spec for spec in deck.sessions}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise DeckError(str(deck.path), [_unknown(name, list(known)) for name in unknown])
    wanted: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(dependency.name for dependency in known[name].depends_on)
    kept = [
        spec if spec.autostart else spec.model_copy(update={"autostart": True})
        for spec in deck.sessions
        if spec.name in wanted
    ]
    return deck.model_copy(update={"sessions": kept})


def _unknown(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name.split("#")[0], known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"no session named {name!r} in the deck{hint} (sessions: {', '.join(known)})"
