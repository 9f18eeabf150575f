"""Small truths of the room: the filter knows state prefixes, the header says how the list
is sorted and filtered, the fork dialog shows the real defaults, narrow terminals give the
panes the room, and counts agree with their nouns."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from textual.widgets import Input

from engine.states import SessionState
from tests.support import wait_state
from tests.tui_support import open_room, session, until
from tui.screens.fork import ForkScreen
from tui.widgets.session_list import matches
from tui.wording import agreeing, counted

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

TWO = session("alpha", "exit 3") + session("busy", "sleep 60")


async def test_the_filter_matches_state_prefixes_and_the_header_shows_it(tmp_path: Path) -> None:
    async with open_room(tmp_path, TWO) as (engine, app, pilot):
        await wait_state(engine, "alpha", SessionState.FAILED)
        await wait_state(engine, "busy", SessionState.ACTIVE)
        failed, active = engine.session_info("alpha"), engine.session_info("busy")
        assert matches(failed, "fail")
        assert not matches(active, "fail")
        assert matches(active, "act")
        assert matches(active, "state:act")
        assert not matches(active, "a")  # one letter is part of a name, not a state
        assert matches(failed, "a")  # alpha
        await pilot.press("backslash")
        await pilot.press(*"fail", "enter")
        await until(pilot, lambda: app.session_list.shown() == ["alpha"])
        assert "filter 'fail'" in app.sub_title
        await pilot.press("s")
        await until(pilot, lambda: "sorted by name" in app.sub_title)
        await engine.terminate("busy")


async def test_the_fork_dialog_shows_the_defaults_of_the_session_forked(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    body = session("web", "sleep 60", f'cwd = "{work}"') + session("web-fork-1", "sleep 60")
    async with open_room(tmp_path, body) as (engine, app, pilot):
        await wait_state(engine, "web", SessionState.ACTIVE)
        await until(pilot, lambda: app.session_list.selected == "web")
        await pilot.press("f")
        await until(pilot, lambda: isinstance(app.screen, ForkScreen))
        shown = {i.id: str(i.placeholder) for i in app.screen.query(Input)}
        assert shown["fork-name"] == "name (default: web-fork-2)"  # web-fork-1 is taken
        assert shown["fork-command"] == "command (default: sleep 60)"
        assert shown["fork-cwd"] == f"working directory (default: {work})"
        await pilot.press("escape")
        await engine.terminate_all()


@pytest.mark.parametrize(("width", "side"), [(150, 40), (100, 30), (64, 22)])
async def test_side_panels_shrink_on_narrow_terminals(
    tmp_path: Path, width: int, side: int
) -> None:
    body = session("one", "sleep 60")
    async with open_room(tmp_path, body, size=(width, 30)) as (engine, app, pilot):
        await until(pilot, lambda: app.query_one("#side").size.width == side)
        await engine.terminate_all()


def test_counts_agree_with_their_nouns() -> None:
    assert counted(1, "session") == "1 session"
    assert counted(3, "session") == "3 sessions"
    assert f"{counted(1, 'session')} {agreeing(1, 'keeps', 'keep')} running" == (
        "1 session keeps running"
    )
