"""Deck files on the command line: `swarmdeck validate`, and loading a deck or saying why not."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from engine import DeckSpec


def validate(path: Path) -> int:
    from engine import DeckError, load_deck
    from tui.wording import counted

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


def load_or_report(path: Path) -> DeckSpec | None:
    """The deck, or None after printing every problem (file: field: expectation)."""
    from engine import DeckError, load_deck

    try:
        return load_deck(path)
    except DeckError as exc:
        for problem in exc.problems:
            print(f"{exc.path}: {problem}", file=sys.stderr)
        return None
