"""Build decks and drive a real engine from tests."""

from __future__ import annotations

import os
import sys
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio

from engine.deck.spec import parse_deck
from engine.engine import open_engine

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from engine.deck.spec import DeckSpec
    from engine.engine import Engine
    from engine.states import SessionState

BUS_CLI = f"{sys.executable} -m tui.cli bus"
"""`swarmdeck bus` as a session's command runs it (with ROOT on PYTHONPATH)."""
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
"""The checkout, as a string for environments."""


def make_deck(
    tmp_path: Path, body: str, pool: str = "size = 2\nwarm = 1", top: str = ""
) -> DeckSpec:
    """`top` holds deck-level keys (they must come before the [pool] table)."""
    text = f"{top}\n[pool]\n{pool}\n\n{body}"
    path = tmp_path / "deck.toml"
    path.write_text(text)
    return parse_deck(text, path)


@asynccontextmanager
async def running(
    tmp_path: Path, body: str, pool: str = "size = 2\nwarm = 1"
) -> AsyncIterator[Engine]:
    """An engine over the deck, every session started; stopped and cleaned on exit."""
    deck = make_deck(tmp_path, body, pool)
    async with open_engine(deck, tmp_path / "run") as engine:
        await engine.start_all()
        yield engine


async def wait_state(engine: Engine, name: str, *states: SessionState, timeout: float = 10) -> None:
    with anyio.fail_after(timeout):
        while engine.sessions[name].state not in states:
            await anyio.sleep(0.01)


async def wait_text(engine: Engine, name: str, needle: str, timeout: float = 10) -> None:
    """Wait until the session's screen shows `needle`."""
    with anyio.fail_after(timeout):
        while not any(needle in line for line in engine.sessions[name].screen.text()):
            await anyio.sleep(0.01)
