"""The room survives what a new user tries: filters, foreign themes, handlers that fail."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from engine import SessionState
from tests.support import running, wait_state
from tests.tui_support import POOL, open_room, pane_text, session, until
from tui.app import ControlRoom
from tui.widgets.session_list import SessionList, runtime
from tui.widgets.terminal_pane import TerminalPane

if TYPE_CHECKING:
    from pathlib import Path

    from textual import events

    from engine import SessionInfo

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


@pytest.mark.slow  # ~20 themes, each a full restyle of the room (~0.4 s; ~3 s under load)
@pytest.mark.timeout(180)
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


def notices(app: ControlRoom) -> list[str]:
    return [n.message for n in app._notifications if n.title == "unexpected error"]


async def test_an_error_in_a_room_handler_is_logged_noticed_and_the_room_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: SessionList, info: SessionInfo) -> bool:
        raise RuntimeError(f"injected failure for {info.name}")

    async def fail_later() -> None:
        raise LookupError("injected worker failure")

    async with running(tmp_path, TWO, POOL) as engine:
        app = ControlRoom(engine)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_state(engine, "ticker", S.ACTIVE)
            await until(pilot, lambda: app.incidents is not None)
            assert app.incidents is not None
            monkeypatch.setattr(SessionList, "update_info", broken)
            await engine.pause("ticker")
            await engine.resume("ticker")  # the same failure again: logged, not noticed twice
            await until(pilot, lambda: len(app.incidents.errors) == 2)  # type: ignore[union-attr]
            monkeypatch.undo()
            [notice] = notices(app)
            assert "ControlRoom.on_session_updated: RuntimeError: injected failure for" in notice
            assert str(engine.run_dir / "room.log") in notice
            app.run_worker(fail_later(), group="test")  # Textual's other path: a worker
            await until(pilot, lambda: len(notices(app)) == 2)
            assert "fail_later (test_tui_resilience.py:" in notices(app)[1]
            await pilot.press("z")  # the room's pump goes on
            await until(pilot, lambda: app.zoomed)
            await engine.pause("ticker")
            await until(pilot, lambda: app.session_list.infos["ticker"].state is S.PAUSED)
    log = (engine.run_dir / "room.log").read_text()
    assert log.count("Traceback") == 2
    assert "failed again (2 times): RuntimeError: injected failure for ticker" in log


async def test_a_failing_widget_handler_leaves_the_widget_working(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shell = session("shell", "PS1='$ ' exec bash --norc -i")
    original = TerminalPane.on_key

    async def broken(self: TerminalPane, event: events.Key) -> None:
        if event.key == "x":
            raise ValueError("injected key failure")
        await original(self, event)

    async with running(tmp_path, shell, POOL) as engine:
        app = ControlRoom(engine)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_state(engine, "shell", S.ACTIVE)
            monkeypatch.setattr(TerminalPane, "on_key", broken)
            await pilot.press("enter")
            await pilot.press("x", *"echo $((6*7))", "enter")
            await until(pilot, lambda: "42" in pane_text(app, "shell"))
            assert app.incidents is not None
            assert [type(e) for e in app.incidents.errors] == [ValueError]


async def test_a_click_on_another_sessions_pane_selects_that_session(tmp_path: Path) -> None:
    async with open_room(tmp_path, TWO) as (engine, app, pilot):
        await wait_state(engine, "ticker", S.ACTIVE)
        assert app.selected == "keeper"
        await pilot.click(app.grid.panes["ticker"])
        assert app.selected == "ticker"
        assert app.focused is app.session_list  # typing into it is still Enter's job


async def test_a_click_selects_the_pane_clicked_in_a_list_sorted_by_run_time(
    tmp_path: Path,
) -> None:
    """Run times move on after the list was sorted: the rows, not a fresh sort, say which
    row a pane is (a live session overtaking a finished one selected the wrong row)."""
    body = session("early", "sleep 2") + session("late", "exec sleep 30", 'depends_on = ["early"]')
    async with open_room(tmp_path, body) as (engine, app, pilot):
        for _ in range(3):  # deck order, name, state, run time; while late waits for early
            await app.run_view_action("sort")
        assert app.session_list.ordering == "run time"
        await wait_state(engine, "late", S.ACTIVE)
        await until(pilot, lambda: app.session_list.infos["late"].state is S.ACTIVE)
        assert app.session_list.shown() == ["early", "late"]  # as sorted when late started
        early = engine.session_info("early")

        def overtaken() -> bool:
            return (runtime(engine.session_info("late")) or 0) > (runtime(early) or 0) + 0.1

        await until(pilot, overtaken)
        await pilot.click(app.grid.panes["late"])
        assert app.selected == "late"
