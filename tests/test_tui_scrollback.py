"""History + screen in a pane are exactly the session's output, line for line: a counter's
every number shows once, in order, at every scroll position, in-process and attached."""

from __future__ import annotations

import itertools
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import pytest

from tests.remote_support import attached, serving
from tests.support import running
from tests.tui_support import POOL, session, until
from tui.app import ControlRoom

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from textual.pilot import Pilot

    from tui.widgets.terminal_pane import TerminalPane

pytestmark = pytest.mark.anyio
LAST = 900
# Output keeps flowing for a while (a pause every 30 lines), so history is looked at while
# lines are still scrolling off the screen, then once more after the counter is done.
COUNT = f"for i in $(seq 1 {LAST}); do echo n$i; [ $((i % 30)) -ne 0 ] || sleep 0.05; done"
COUNTER = session("counter", f"{COUNT}; sleep 60")


@asynccontextmanager
async def room(tmp_path: Path, where: str) -> AsyncIterator[tuple[ControlRoom, Pilot[None]]]:
    async with running(tmp_path, COUNTER, POOL) as engine:
        if where == "local":
            app = ControlRoom(engine)
            async with app.run_test(size=(100, 30)) as pilot:
                yield app, pilot
            return
        async with serving(engine) as server, attached(server) as remote:
            app = ControlRoom(remote, attached=True)
            async with app.run_test(size=(100, 30)) as pilot:
                yield app, pilot


def viewport(pane: TerminalPane) -> list[int]:
    """The numbers the pane shows, top to bottom; blank rows only below the last one."""
    rows = [pane.render_line(y).text.strip() for y in range(pane.size.height)]
    while rows and not rows[-1]:
        rows.pop()
    assert all(row.startswith("n") for row in rows), rows
    return [int(row[1:]) for row in rows]


def check_every_position(pane: TerminalPane) -> list[int]:
    """The numbers of the frozen history, after walking it from its last page to its top
    and down a line at a time: each viewport holds consecutive numbers, and so does the
    whole (no line skipped or repeated where the history meets the screen)."""
    texts = ["".join(text for text, _ in line).strip() for line in pane.history_lines()]
    numbers = [int(text[1:]) for text in texts if text]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), _gaps(numbers)
    assert viewport(pane) == numbers[-len(viewport(pane)) :]
    pane.scroll_history(-len(texts))
    while pane.in_history:
        shown = viewport(pane)
        assert shown == list(range(shown[0], shown[0] + len(shown))), shown
        pane.scroll_history(1)
    return numbers


def _gaps(numbers: list[int]) -> list[tuple[int, int]]:
    return [(a, b) for a, b in itertools.pairwise(numbers) if b != a + 1][:5]


@pytest.mark.parametrize("where", ["local", "attached"])
async def test_history_and_screen_hold_every_line_once_at_every_scroll_position(
    tmp_path: Path, where: str
) -> None:
    async with room(tmp_path, where) as (app, pilot):
        pane = app.grid.panes["counter"]
        await until(pilot, lambda: len(app.engine.history("counter")) > 100)
        for _ in range(4):  # while lines scroll off
            check_every_position(pane)
            await pilot.pause(0.15)
        await until(pilot, lambda: check_every_position(pane) == list(range(1, LAST + 1)))
