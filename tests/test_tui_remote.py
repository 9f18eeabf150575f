"""The control room on a RemoteEngine (a real control socket): viewers are read-only,
and quitting an attached room asks detach / stop all / cancel."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import pytest

from engine.states import SessionState
from tests.remote_support import attached, serving
from tests.support import running, wait_state
from tests.tui_support import POOL, pane_text, session, until
from tui.app import ControlRoom
from tui.screens.quit import QuitScreen

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from textual.pilot import Pilot

    from engine.engine import Engine

pytestmark = pytest.mark.anyio
S = SessionState
SHELL = session(
    "shell", "PS1='sh$ ' exec bash --norc -i", 'stop_signal = "HUP"\nstop_grace = "500ms"'
)


@asynccontextmanager
async def remote_room(
    tmp_path: Path, role: str
) -> AsyncIterator[tuple[Engine, ControlRoom, Pilot[None]]]:
    """The room attached over the socket as `role`, the served engine behind it."""
    async with running(tmp_path, SHELL, POOL) as engine, serving(engine) as server:
        await wait_state(engine, "shell", S.ACTIVE)
        async with attached(server, role) as remote:
            app = ControlRoom(remote, read_only=remote.role == "viewer", attached=True)
            async with app.run_test(size=(140, 45)) as pilot:
                yield engine, app, pilot


async def test_a_viewer_sees_read_only_and_its_control_keys_change_nothing(
    tmp_path: Path,
) -> None:
    async with remote_room(tmp_path, "viewer") as (engine, app, pilot):
        assert "READ-ONLY" in app.title
        assert app.check_action("pause", ()) is False  # hidden from the footer
        await until(pilot, lambda: "sh$" in "\n".join(pane_text(app, "shell")))
        await pilot.press("p", "t", "enter", *"echo nope", "enter")
        await pilot.pause(0.3)
        assert engine.session_info("shell").state is S.ACTIVE
        assert app.focused is not app.grid.panes["shell"]
        assert "nope" not in "\n".join(engine.sessions["shell"].screen.text())
        messages = [n.message for n in app._notifications]
        assert "read-only viewer" in messages
        await pilot.press("q")  # a viewer just detaches
        await until(pilot, lambda: not app.is_running)
        assert app.quit_choice == "detach"
        assert engine.session_info("shell").state is S.ACTIVE


async def test_an_operator_quits_by_choosing_detach_and_sessions_keep_running(
    tmp_path: Path,
) -> None:
    async with remote_room(tmp_path, "operator") as (engine, app, pilot):
        await pilot.press("q")
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("escape")
        assert app.is_running
        assert not isinstance(app.screen, QuitScreen)
        await pilot.press("q", "d")
        await until(pilot, lambda: not app.is_running)
        assert app.quit_choice == "detach"
        assert engine.session_info("shell").state is S.ACTIVE


async def test_an_operator_can_choose_to_stop_everything(tmp_path: Path) -> None:
    async with remote_room(tmp_path, "operator") as (_, app, pilot):
        await pilot.press("q", "s")
        await until(pilot, lambda: not app.is_running)
        assert app.quit_choice == "stop"
