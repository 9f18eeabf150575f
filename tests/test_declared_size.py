"""A session's declared size (the deck's `cols`/`rows`) wins over the room's pane size: the
PTY, its program and its recording keep it, the pane shows what fits; only a zoom (a
deliberate resize) changes it, and every change is an "r" event in the recording."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from engine.states import SessionState
from tests.remote_support import attached, eventually, serving
from tests.support import running, wait_state, wait_text
from tests.test_recorder import read_cast
from tests.tui_support import open_room, pane_text, session, until

if TYPE_CHECKING:
    from pathlib import Path

    from textual.pilot import Pilot

    from tui.app import ControlRoom
    from tui.widgets.terminal_pane import TerminalPane

pytestmark = pytest.mark.anyio

# One `stty size` per line typed: what the program sees, asked for after the room settled.
SIZER = session(
    "sized", 'while read -r n; do echo "size-$n $(stty size)"; done', "cols = 100\nrows = 30"
)


async def settled(pilot: Pilot[None], app: ControlRoom, pane: TerminalPane) -> None:
    """The pane's pending resize (if any) has been sent and carried out."""
    await until(pilot, lambda: pane._resize_timer is None)
    await until(pilot, lambda: not [w for w in app.workers if w.group == "pane-resize"])


async def test_a_declared_size_survives_a_small_room(tmp_path: Path) -> None:
    async with open_room(tmp_path, SIZER, size=(60, 16)) as (engine, app, pilot):
        await wait_state(engine, "sized", SessionState.ACTIVE)
        pane = app.grid.panes["sized"]
        await until(pilot, lambda: 0 < pane.size.width < 100 and pane.size.height < 30)
        await settled(pilot, app, pane)
        await engine.send_input("sized", b"1\r")
        await wait_text(engine, "sized", "size-1 30 100")
        assert (engine.session_info("sized").cols, engine.session_info("sized").rows) == (100, 30)
        # the pane clips the 100x30 screen to what fits, keeping the cursor's rows in view
        await until(pilot, lambda: any("size-1 30 100" in line for line in pane_text(app, "sized")))
        assert "clipped" in str(pane.border_subtitle)
        await engine.terminate("sized")
        await engine.wait_finished()
    header, events = read_cast(tmp_path / "run" / "sessions" / "sized.cast")
    assert (header["width"], header["height"]) == (100, 30)
    assert [text for _, code, text in events if code == "r"] == []


async def test_zooming_resizes_deliberately_and_the_recording_notes_it(tmp_path: Path) -> None:
    async with open_room(tmp_path, SIZER, size=(60, 16)) as (engine, app, pilot):
        await wait_state(engine, "sized", SessionState.ACTIVE)
        pane = app.grid.panes["sized"]
        await until(pilot, lambda: app.session_list.selected == "sized")
        await settled(pilot, app, pane)
        await pilot.press("z")
        await until(pilot, lambda: engine.session_info("sized").cols == pane.size.width)
        zoomed = (pane.size.width, pane.size.height)
        await engine.send_input("sized", b"2\r")
        await wait_text(engine, "sized", f"size-2 {zoomed[1]} {zoomed[0]}")
        await pilot.press("z")  # unzoomed: the deck's size again
        await until(pilot, lambda: engine.session_info("sized").cols == 100)
        await engine.send_input("sized", b"3\r")
        await wait_text(engine, "sized", "size-3 30 100")
        await engine.terminate("sized")
        await engine.wait_finished()
    header, events = read_cast(tmp_path / "run" / "sessions" / "sized.cast")
    assert (header["width"], header["height"]) == (100, 30)
    resizes = [text for _, code, text in events if code == "r"]
    assert resizes == [f"{zoomed[0]}x{zoomed[1]}", "100x30"]


async def test_over_the_socket_a_declared_size_wins_unless_deliberate(tmp_path: Path) -> None:
    body = session("sized", "exec cat", "cols = 100\nrows = 30") + session(
        "svc", "echo up; exec sleep 60", 'ready = { log = "up" }'
    )
    async with (
        running(tmp_path, body) as engine,
        serving(engine) as server,
        attached(server) as remote,
    ):
        await eventually(lambda: remote.session_info("sized").state is SessionState.ACTIVE)
        await remote.resize("sized", 40, 10)
        assert (engine.session_info("sized").cols, engine.session_info("sized").rows) == (100, 30)
        await remote.resize("sized", 40, 10, deliberate=True)
        await eventually(lambda: remote.session_info("sized").cols == 40)
        assert engine.session_info("sized").rows == 10
        await eventually(lambda: remote.session_info("svc").detail == "ready")
        await engine.terminate_all()
