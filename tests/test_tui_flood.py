"""A flooding session must not freeze the room: keys respond and other panes keep updating.

Checked structurally, never by wall-clock speed (machines are shared and noisy; the speed
figures live in bench/ui.py): while the flood runs, every key still takes effect, the
ticker's pane keeps changing, and an action reaches the session it was meant for.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest
from textual import events

from engine.states import SessionState
from tests.support import wait_state
from tests.tui_support import open_room, pane_text, session, until

if TYPE_CHECKING:
    from pathlib import Path

    from textual.pilot import Pilot

    from tui.app import ControlRoom

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

BODY = (
    session("flood", "exec yes 'flooding the pane with a long line of text, over and over'")
    + session("ticker", "i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.1; done")
    + session("idle", "exec sleep 60")
)
HANG = 10  # s: only a guard against a frozen room, generous on a loaded machine


async def press_until_moved(app: ControlRoom, pilot: Pilot[None], key: str) -> None:
    """Post `key` and let the app run until the list's cursor has moved."""
    row = app.session_list.cursor_row
    app.post_message(events.Key(key, key))
    await until(pilot, lambda: app.session_list.cursor_row != row, timeout=HANG)


def last_tick(app: ControlRoom) -> str:
    ticks = [line for line in pane_text(app, "ticker") if line.startswith("tick-")]
    return ticks[-1] if ticks else ""


async def test_a_flooding_session_leaves_keys_and_other_panes_responsive(tmp_path: Path) -> None:
    async with open_room(tmp_path, BODY) as (engine, app, pilot):
        await wait_state(engine, "flood", SessionState.ACTIVE)
        await wait_state(engine, "ticker", SessionState.ACTIVE)
        await pilot.pause(1.0)  # the flood is well under way
        ticks = []
        for step in range(10):
            ticks.append(last_tick(app))
            await press_until_moved(app, pilot, "j" if step % 2 == 0 else "k")
            await pilot.pause(0.15)
        ticks.append(last_tick(app))
        assert len(set(ticks)) >= 5, f"ticker pane froze: {ticks}"
        assert engine.sessions["flood"].state is SessionState.ACTIVE

        while app.selected != "ticker":
            below = app.session_list.shown().index("ticker") > app.session_list.cursor_row
            await press_until_moved(app, pilot, "j" if below else "k")
        app.post_message(events.Key("p", "p"))
        await wait_state(engine, "ticker", SessionState.PAUSED, timeout=HANG)
        assert engine.sessions["flood"].state is SessionState.ACTIVE


async def test_a_flooding_pane_backs_off_while_a_calm_one_repaints_on_the_next_frame(
    tmp_path: Path,
) -> None:
    """Frames driven by hand: once `flood` has changed on FLOOD_STREAK frames in a row it is
    pulled at most every FLOOD_FRAME, while `ticker`, changing on every other frame, is
    pulled on each frame it changed (the room's frame cost stays bounded under a flood)."""
    from tui.widgets.pane_grid import FLOOD_STREAK

    async with open_room(tmp_path, BODY) as (engine, app, pilot):
        await wait_state(engine, "flood", SessionState.ACTIVE)
        grid = app.grid
        assert grid._timer is not None
        grid._timer.pause()
        pulls: list[str] = []
        for name in ("flood", "ticker"):
            pane = grid.panes[name]
            original = pane.pull

            def pull(name: str = name, original: Any = original) -> None:
                pulls.append(name)
                original()

            pane.pull = pull  # type: ignore[method-assign]
        counts = []
        for frame in range(FLOOD_STREAK + 4):  # back to back: well under FLOOD_FRAME apart
            pulls.clear()
            grid.mark_dirty("flood")
            if frame % 2 == 0:  # calm: changed on every other frame only
                grid.mark_dirty("ticker")
            grid._frame()
            counts.append((pulls.count("flood"), pulls.count("ticker")))
        assert [ticker for _, ticker in counts] == [1 - frame % 2 for frame in range(len(counts))]
        assert counts[0][0] == 1  # never pulled yet: at once
        assert sum(flood for flood, _ in counts[FLOOD_STREAK:]) <= 1, counts  # backed off
        pulls.clear()
        await until(pilot, lambda: "flood" in pulls, timeout=HANG)  # the frame timer again


async def test_the_typed_echo_is_painted_alone_and_floods_slow_down_while_typing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The focused pane's echo is pulled at once, and no other pane on the frames right
    after it, so Textual's next screen update renders the echo alone; while the operator
    types, a flooding pane repaints at TYPING_FLOOD_FRAME, not FLOOD_FRAME."""
    from tui.widgets import pane_grid

    monkeypatch.setattr(pane_grid, "ECHO_ALONE", 60.0)  # "just now", however loaded we are
    async with open_room(tmp_path, BODY) as (engine, app, pilot):
        await wait_state(engine, "idle", SessionState.ACTIVE)
        grid = app.grid
        assert grid._timer is not None
        grid.panes["idle"].focus()
        await until(pilot, lambda: grid.panes["idle"].has_focus, timeout=HANG)
        grid._timer.pause()
        pulls: list[str] = []
        for name, pane in grid.panes.items():
            original = pane.pull

            def pull(name: str = name, original: Any = original) -> None:
                pulls.append(name)
                original()

            pane.pull = pull  # type: ignore[method-assign]
        grid._dirty.clear()  # frames are driven by hand from here (no await until the end)
        grid.mark_dirty("ticker")
        grid.mark_dirty("idle")  # the echo
        assert pulls == ["idle"]
        grid._frame()
        assert pulls == ["idle"], "another pane was painted with the echo"
        grid._echo_at = float("-inf")  # the echo is on screen: the next frame goes on
        grid._frame()
        assert pulls == ["idle", "ticker"]
        assert pane_grid.TYPING_FLOOD_FRAME > pane_grid.FLOOD_FRAME
        grid._streak["flood"] = pane_grid.FLOOD_STREAK
        now = time.monotonic()
        grid._pulled_at["flood"] = now - (pane_grid.FLOOD_FRAME + pane_grid.TYPING_FLOOD_FRAME) / 2
        grid.mark_dirty("flood")
        grid._frame()
        assert "flood" not in pulls, "a flood repainted at the calm rate while typing"
