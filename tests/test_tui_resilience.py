"""The room survives what a new user tries: filters, foreign themes, handlers that fail."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from engine.states import SessionState
from tests.support import wait_state
from tests.tui_support import open_room, session, until

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio
S = SessionState
TWO = session("keeper", "exec sleep 30") + session("ticker", "exec sleep 30")


async def test_a_session_hidden_by_the_filter_can_change_state(tmp_path: Path) -> None:
    async with open_room(tmp_path, TWO) as (engine, app, pilot):
        await wait_state(engine, "ticker", S.ACTIVE)
        await pilot.press("backslash")
        await pilot.press(*"keeper", "enter")
        await until(pilot, lambda: app.session_list.shown() == ["keeper"])
        await engine.pause("ticker")
        await until(pilot, lambda: app.session_list.infos["ticker"].state is S.PAUSED)
        assert app.is_running
        assert list(app.grid.panes) == ["keeper"]
        await pilot.press("backslash")
        await pilot.press(*["backspace"] * 6, "enter")
        await until(pilot, lambda: app.session_list.shown() == ["keeper", "ticker"])


@pytest.mark.slow  # ~20 themes, each a full restyle of the room
async def test_every_theme_on_offer_can_be_switched_to(tmp_path: Path) -> None:
    async with open_room(tmp_path, TWO) as (engine, app, pilot):
        await wait_state(engine, "ticker", S.ACTIVE)
        for name in app.available_themes:
            app.switch_theme(name)
            await pilot.pause()
            assert app.is_running, name
            assert app.current_theme.name == name
            background = app.get_css_variables()["terminal-background"]
            assert app.palette.background.triplet is not None
            assert app.palette.background.triplet.hex == background.lower(), name
        await pilot.pause(0.05)
