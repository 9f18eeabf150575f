"""Run the control room against a real engine with real sessions, for pilot tests."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio

from tests.support import running
from tui.app import ControlRoom

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from textual.pilot import Pilot

    from engine.engine import Engine

POOL = "size = 4\nwarm = 0"


@asynccontextmanager
async def open_room(
    tmp_path: Path,
    body: str,
    pool: str = POOL,
    size: tuple[int, int] = (140, 45),
    redact: bool = False,
    keys: dict[str, str] | None = None,
) -> AsyncIterator[tuple[Engine, ControlRoom, Pilot[None]]]:
    """An engine running `body`'s sessions and the room in front of it. The room survives
    unexpected errors (tui.incidents), so a test fails on any it recorded."""
    async with running(tmp_path, body, pool) as engine:
        app = ControlRoom(engine, redact=redact, keys=keys)
        async with app.run_test(size=size) as pilot:
            yield engine, app, pilot
        assert_no_incidents(app)


def assert_no_incidents(app: ControlRoom, context: str = "") -> None:
    errors = app.incidents.errors if app.incidents is not None else []
    assert not errors, f"{context}the room recorded errors: {errors!r}"


async def until(pilot: Pilot[None], check: Callable[[], bool], timeout: float = 10) -> None:
    """Let the app run until `check()` holds."""
    with anyio.fail_after(timeout):
        while not check():
            await pilot.pause(0.02)


def pane_text(app: ControlRoom, session: str) -> list[str]:
    """What the session's pane shows, one string per visible row."""
    pane = app.grid.panes[session]
    return [pane.render_line(y).text.rstrip() for y in range(pane.size.height)]


def session(name: str, command: str, extra: str = "") -> str:
    return f'[[session]]\nname = "{name}"\ncommand = """{command}"""\n{extra}\n'
