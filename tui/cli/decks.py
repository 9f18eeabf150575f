"""Deck files on the command line: `swarmdeck validate`, the default deck (`swarmdeck.toml`
in the current directory), and loading a deck (or a subset of it) or saying why not."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from engine import DeckSpec

DEFAULT_DECK = "swarmdeck.toml"


class NoDeckError(Exception):
    """No deck named and no swarmdeck.toml here."""


def deck_and_sessions(deck: Path | None, sessions: Sequence[str]) -> tuple[Path, list[str]]:
    """`run [DECK] [SESSION…]`: the first word is the deck when it names a file or ends in
    .toml; otherwise every word is a session of `./swarmdeck.toml`."""
    words = list(sessions)
    if deck is not None and (deck.suffix == ".toml" or deck.exists()):
        return deck, words
    if deck is not None:
        words.insert(0, str(deck))
    default = Path(DEFAULT_DECK)
    if not default.is_file():
        named = f" ({words[0]!r} is neither a deck file nor ending in .toml)" if words else ""
        raise NoDeckError(
            f"no deck given and no {DEFAULT_DECK} in {Path.cwd()}{named}: "
            f"name a deck file, or create {DEFAULT_DECK} here"
        )
    return default, words


def resolve_or_report(
    command: str, deck: Path | None, sessions: Sequence[str] = ()
) -> tuple[Path, list[str]] | None:
    """`deck_and_sessions`, or None after printing why there is no deck."""
    try:
        return deck_and_sessions(deck, sessions)
    except NoDeckError as exc:
        print(f"swarmdeck {command}: {exc}", file=sys.stderr)
        return None


def validate(path: Path | None) -> int:
    from engine import DeckError, load_deck
    from tui.wording import counted

    found = resolve_or_report("validate", path)
    if found is None:
        return 2
    path = found[0]
    try:
        deck = load_deck(path)
    except DeckError as exc:
        print(
            f"{exc.path}: invalid deck ({counted(len(exc.problems), 'problem')})", file=sys.stderr
        )
        for problem in exc.problems:
            print(f"{exc.path}: {problem}", file=sys.stderr)
        return 2
    count = len(deck.sessions)
    print(f"{path}: OK ({count} session{'' if count == 1 else 's'}, pool of {deck.pool.size})")
    return 0


def load_or_report(path: Path, sessions: Sequence[str] = ()) -> DeckSpec | None:
    """The deck (only `sessions` and what they depend on, when named), or None after
    printing every problem (file: field: expectation)."""
    from engine import DeckError, load_deck, only_sessions

    try:
        return only_sessions(load_deck(path), sessions)
    except DeckError as exc:
        for problem in exc.problems:
            print(f"{exc.path}: {problem}", file=sys.stderr)
        return None
