"""Copy from a pane: copy mode in the history selects with keys, a mouse drag selects
through Textual's selection, and both reach App.copy_to_clipboard (OSC 52)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from engine.states import SessionState
from tests.support import wait_state, wait_text
from tests.tui_support import open_room, session, until
from tui.copy_mode import CopyCursor

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

LINES = session("lines", "printf 'alpha one\\\\nbeta two\\\\ngamma three\\\\n'; exec sleep 60")


async def test_copy_mode_selects_two_lines_with_keys_and_yank_copies_exactly_them(
    tmp_path: Path,
) -> None:
    async with open_room(tmp_path, LINES) as (engine, app, pilot):
        await wait_state(engine, "lines", SessionState.ACTIVE)
        await wait_text(engine, "lines", "gamma three")
        await pilot.pause(0.2)
        pane = app.grid.panes["lines"]
        await pilot.press("v")
        assert pane.copy_cursor is not None
        assert "COPY" in str(pane.border_subtitle)
        await pilot.press("k", "k", "V", "j", "y")  # from the cursor's line up to beta
        assert app.clipboard == "beta two\ngamma three"
        assert pane.copy_cursor is None
        assert pane.in_history  # copy mode ends; Esc goes back to live
        await pilot.press("v", "k", "k", "k", *"llllll", "v", "$", "y")
        assert app.clipboard == "one"
        await pilot.press("v", "j", "escape")  # cancelled: nothing copied, j moved no row
        assert app.clipboard == "one"
        assert app.selected == "lines"
        await pilot.press("escape")
        await until(pilot, lambda: not pane.in_history)


async def test_a_mouse_drag_over_the_history_copies_the_text_it_covers(tmp_path: Path) -> None:
    async with open_room(tmp_path, LINES) as (engine, app, pilot):
        await wait_text(engine, "lines", "gamma three")
        await pilot.pause(0.2)
        pane = app.grid.panes["lines"]
        await pilot.press("pageup")
        assert pane.in_history
        x, y = pane.content_region.x, pane.content_region.y
        await pilot.mouse_down(offset=(x, y + 1))
        await pilot.hover(offset=(x + 4, y + 2))
        await pilot.mouse_up(offset=(x + 4, y + 2))
        await until(pilot, lambda: bool(app.clipboard))
        assert app.clipboard == "beta two\ngamma"


def test_a_character_selection_spans_from_the_anchor_to_the_cursor_inclusive() -> None:
    cursor = CopyCursor(row=2, col=3)
    cursor.select(whole_lines=False)
    cursor.move(2, -2, (10, 20))
    assert [cursor.span(row, 20) for row in range(1, 6)] == [None, (3, 20), (0, 20), (0, 2), None]
    cursor.select(whole_lines=True)
    assert cursor.rows(20) == [(2, 0, 20), (3, 0, 20), (4, 0, 20)]
    cursor.move(-100, 100, (10, 20))
    assert (cursor.row, cursor.col) == (0, 19)
