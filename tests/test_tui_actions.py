"""Every operator action, through keys, against a real engine with real sessions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from textual.widgets import DataTable

from engine.states import SessionState
from tests.support import wait_state, wait_text
from tests.tui_support import open_room, pane_text, session, until

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio
S = SessionState

SHELL = session(
    "shell", "PS1='$ ' exec bash --norc -i", 'stop_signal = "HUP"\nstop_grace = "500ms"'
)
SLEEPER = session("sleeper", "echo sleeping; exec sleep 30")


async def test_enter_focuses_the_pane_and_keys_reach_the_session(tmp_path: Path) -> None:
    async with open_room(tmp_path, SHELL + SLEEPER) as (engine, app, pilot):
        await wait_state(engine, "shell", S.ACTIVE)
        await pilot.press("enter")
        assert app.focused is app.grid.panes["shell"]
        await pilot.press(*"echo $((6*7))", "enter")
        await until(pilot, lambda: "42" in pane_text(app, "shell"))
        await pilot.press("ctrl+right_square_bracket")
        assert app.focused is not None
        assert app.focused.id == "sessions"
        await pilot.press("j")
        assert app.selected == "sleeper"


async def test_pause_and_resume_change_state_and_the_pane_says_paused(tmp_path: Path) -> None:
    async with open_room(tmp_path, SLEEPER) as (engine, app, pilot):
        await wait_state(engine, "sleeper", S.ACTIVE)
        await pilot.press("p")
        await wait_state(engine, "sleeper", S.PAUSED)
        pane = app.grid.panes["sleeper"]
        await until(pilot, lambda: pane.has_class("-state-paused"))
        assert "PAUSED" in str(pane.border_subtitle)
        await pilot.press("r")
        await wait_state(engine, "sleeper", S.ACTIVE)
        await until(pilot, lambda: not pane.has_class("-state-paused"))


async def test_terminate_asks_first_and_cancel_keeps_the_session(tmp_path: Path) -> None:
    async with open_room(tmp_path, SLEEPER) as (engine, app, pilot):
        await wait_state(engine, "sleeper", S.ACTIVE)
        await pilot.press("t")
        await pilot.press("n")
        assert engine.session_info("sleeper").state is S.ACTIVE
        await pilot.press("t", "y")
        await wait_state(engine, "sleeper", S.TERMINATED)
        await until(pilot, lambda: app.grid.panes["sleeper"].has_class("-state-terminated"))


async def test_a_disabled_action_explains_why(tmp_path: Path) -> None:
    async with open_room(tmp_path, session("done", "true")) as (engine, app, pilot):
        await wait_state(engine, "done", S.COMPLETED)
        await pilot.pause(0.1)
        assert app.check_action("pause", ()) is None
        await pilot.press("p")
        await pilot.pause(0.05)
        messages = [n.message for n in app._notifications]
        assert any("done is completed" in m and "pause needs active" in m for m in messages)


async def test_fork_dialog_starts_a_copy_with_overrides(tmp_path: Path) -> None:
    async with open_room(tmp_path, SLEEPER) as (engine, app, pilot):
        await wait_state(engine, "sleeper", S.ACTIVE)
        await pilot.press("f")
        await pilot.pause(0.1)
        await pilot.press(*"copy", "tab")
        await pilot.press(*"echo forked-copy; sleep 30", "enter")
        await until(pilot, lambda: "copy" in engine.sessions)
        await until(pilot, lambda: "copy" in app.session_list.shown())


async def test_restart_runs_a_finished_session_again(tmp_path: Path) -> None:
    async with open_room(tmp_path, session("once", "echo ran")) as (engine, _app, pilot):
        await wait_state(engine, "once", S.COMPLETED)
        await pilot.pause(0.1)
        await pilot.press("R")
        await until(pilot, lambda: len(engine.session_info("once").attempts) >= 2)


async def test_zoom_shows_only_the_selected_pane(tmp_path: Path) -> None:
    async with open_room(tmp_path, SLEEPER + SHELL) as (_engine, app, pilot):
        await pilot.press("z")
        await pilot.pause(0.05)
        shown = [n for n, pane in app.grid.panes.items() if pane.display]
        assert shown == ["sleeper"]
        await pilot.press("z")
        await pilot.pause(0.05)
        assert all(pane.display for pane in app.grid.panes.values())


async def test_page_up_scrolls_history_and_search_finds_old_lines(tmp_path: Path) -> None:
    body = session("lines", "seq 1 300; sleep 30")
    async with open_room(tmp_path, body) as (engine, app, pilot):
        await wait_text(engine, "lines", "300")
        await pilot.pause(0.2)
        pane = app.grid.panes["lines"]
        await pilot.press("pageup")
        assert pane.in_history
        assert "300" not in pane_text(app, "lines")
        await pilot.press("slash")
        await pilot.pause(0.1)
        await pilot.press(*"137", "enter")
        await until(pilot, lambda: "137" in pane_text(app, "lines"))
        await pilot.press("escape")
        assert not pane.in_history
        await until(pilot, lambda: "300" in pane_text(app, "lines"))


async def test_filter_and_sort_change_the_list_and_the_grid(tmp_path: Path) -> None:
    body = SLEEPER + session("bravo", "exec sleep 30") + session("alpha", "true")
    async with open_room(tmp_path, body) as (engine, app, pilot):
        await wait_state(engine, "alpha", S.COMPLETED)
        await pilot.press("backslash")
        await pilot.pause(0.1)
        await pilot.press(*"completed", "enter")
        await until(pilot, lambda: app.session_list.shown() == ["alpha"])
        assert list(app.grid.panes) == ["alpha"]
        await pilot.press("backslash")
        await pilot.pause(0.1)
        await pilot.press(*["backspace"] * 9, "enter")
        await pilot.press("s")
        assert app.session_list.shown() == ["alpha", "bravo", "sleeper"]


async def test_help_lists_every_key(tmp_path: Path) -> None:
    async with open_room(tmp_path, SLEEPER) as (_engine, app, pilot):
        await pilot.press("question_mark")
        table = app.screen.query_one("#help-keys", DataTable)
        assert table.row_count >= 15
        await pilot.press("escape")
        assert app.screen is app.screen_stack[0]


async def test_resizing_the_room_resizes_the_session_pty(tmp_path: Path) -> None:
    body = session("size", "while true; do stty size; sleep 0.2; done")
    async with open_room(tmp_path, body, size=(120, 40)) as (engine, app, pilot):
        await wait_state(engine, "size", S.ACTIVE)
        pane = app.grid.panes["size"]
        await until(pilot, lambda: engine.session_info("size").cols == pane.size.width)
        await pilot.resize_terminal(100, 30)
        await until(pilot, lambda: engine.session_info("size").cols == pane.size.width)
        rows, cols = pane.size.height, pane.size.width
        await wait_text(engine, "size", f"{rows} {cols}")


async def test_quit_asks_and_stops_every_session(tmp_path: Path) -> None:
    async with open_room(tmp_path, SLEEPER) as (engine, app, pilot):
        await wait_state(engine, "sleeper", S.ACTIVE)
        await pilot.press("q")
        assert app.screen is not app.screen_stack[0]
        await pilot.press("y")
        await wait_state(engine, "sleeper", S.TERMINATED)
        await until(pilot, lambda: not app.is_running)


async def test_palette_runs_session_actions_and_switches_theme(tmp_path: Path) -> None:
    async with open_room(tmp_path, SLEEPER) as (engine, app, pilot):
        await wait_state(engine, "sleeper", S.ACTIVE)
        await app.run_session_action("pause", "sleeper")
        await wait_state(engine, "sleeper", S.PAUSED)
        app.switch_theme("swarmdeck-light")
        await pilot.pause(0.05)
        assert app.palette.background.triplet != app.palette.foreground.triplet
        assert app.current_theme.name == "swarmdeck-light"
        await pilot.press("ctrl+p")
        await pilot.press(*"Resume sleeper")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_state(engine, "sleeper", S.ACTIVE)


async def test_a_repeated_unavailable_key_explains_why_again(tmp_path: Path) -> None:
    async with open_room(tmp_path, SLEEPER) as (engine, app, pilot):
        await wait_state(engine, "sleeper", S.ACTIVE)
        await pilot.press("p")
        await wait_state(engine, "sleeper", S.PAUSED)
        await until(pilot, lambda: app.check_action("pause", ()) is None)
        await pilot.press("p")
        await pilot.pause(0.05)
        messages = [n.message for n in app._notifications]
        assert any("sleeper is paused; pause needs active" in m for m in messages)


async def test_the_palette_zooms_and_sorts(tmp_path: Path) -> None:
    body = SLEEPER + session("alpha", "exec sleep 30")
    async with open_room(tmp_path, body) as (_engine, app, pilot):
        await app.run_view_action("zoom")
        assert [n for n, pane in app.grid.panes.items() if pane.display] == ["sleeper"]
        await app.run_view_action("zoom")
        await app.run_view_action("sort")
        assert app.session_list.shown() == ["alpha", "sleeper"]
        await pilot.press("ctrl+p")
        await pilot.press(*"Zoom")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: app.zoomed)


async def test_palette_type_and_search_act_on_the_named_session(tmp_path: Path) -> None:
    async with open_room(tmp_path, SHELL + SLEEPER) as (engine, app, pilot):
        await wait_state(engine, "sleeper", S.ACTIVE)
        assert app.selected == "shell"
        await app.run_session_action("focus_pane", "sleeper")
        await pilot.pause()
        assert app.selected == "sleeper"
        assert app.focused is app.grid.panes["sleeper"]
        await pilot.press("ctrl+right_square_bracket")
        await app.run_session_action("search", "shell")
        assert app.selected == "shell"


async def test_a_pane_hidden_by_zoom_catches_up_when_shown(tmp_path: Path) -> None:
    async with open_room(tmp_path, SLEEPER + SHELL) as (engine, app, pilot):
        await wait_state(engine, "shell", S.ACTIVE)
        await pilot.press("z")
        await pilot.pause(0.1)
        await engine.send_input("shell", b"echo hidden-$((6*7))\r")
        await wait_text(engine, "shell", "hidden-42")
        await pilot.pause(0.2)  # frames pass while the pane is hidden
        await pilot.press("z")  # shown again: caught up at once, not on its next change
        assert any("hidden-42" in line for line in pane_text(app, "shell"))


async def test_a_click_reports_the_cell_under_the_pointer_not_the_border(tmp_path: Path) -> None:
    body = session("mouse", "printf '\\\\033[?1000h\\\\033[?1006h'; exec cat -v")
    async with open_room(tmp_path, body) as (engine, app, pilot):
        await wait_state(engine, "mouse", S.ACTIVE)
        pane = app.grid.panes["mouse"]
        await until(pilot, lambda: pane.modes.mouse != "off")
        await pilot.press("enter")
        await pilot.click(pane, offset=(0, 0))  # the border: nothing for the program
        await pilot.click(pane, offset=(3, 2))  # content cell (2, 1): SGR reports 1-based
        await wait_text(engine, "mouse", "[<0;3;2M")
        assert not any("[<0;0;" in line or ";1;1M" in line for line in pane_text(app, "mouse"))


async def test_pause_all_and_resume_all_act_on_the_shown_sessions(tmp_path: Path) -> None:
    body = SLEEPER + session("bravo", "exec sleep 30")
    async with open_room(tmp_path, body) as (engine, app, pilot):
        await wait_state(engine, "bravo", S.ACTIVE)
        await wait_state(engine, "sleeper", S.ACTIVE)
        await pilot.press("backslash")
        await pilot.pause(0.1)
        await pilot.press(*"bravo", "enter")
        await until(pilot, lambda: app.session_list.shown() == ["bravo"])
        await pilot.press("P")  # the filter shows bravo only
        await wait_state(engine, "bravo", S.PAUSED)
        assert engine.session_info("sleeper").state is S.ACTIVE
        await pilot.press("backslash")
        await pilot.pause(0.1)
        await pilot.press(*["backspace"] * 5, "enter")
        await until(pilot, lambda: len(app.session_list.shown()) == 2)
        await pilot.press("P")  # no filter: every active one
        await wait_state(engine, "sleeper", S.PAUSED)
        await pilot.press("U")
        await wait_state(engine, "sleeper", S.ACTIVE)
        await wait_state(engine, "bravo", S.ACTIVE)


async def test_max_parallel_changes_live_from_the_room_and_alerts_are_listed(
    tmp_path: Path,
) -> None:
    from tui.screens.alerts import AlertsScreen

    async with open_room(tmp_path, SLEEPER) as (engine, app, pilot):
        await wait_state(engine, "sleeper", S.ACTIVE)
        await pilot.press("m")
        await pilot.pause(0.1)
        await pilot.press(*["backspace"] * 3, "1", "enter")
        await until(pilot, lambda: engine.scheduler.limit == 1)
        assert engine.contention_statistics().parallel_reason == "set to 1 by the operator"
        await pilot.press("m")
        await pilot.pause(0.1)
        await pilot.press(*["backspace"] * 3, *"99", "enter")
        await until(pilot, lambda: any("pool size" in n.message for n in app._notifications))
        assert engine.scheduler.limit == 1
        await pilot.press("exclamation_mark")
        await until(pilot, lambda: isinstance(app.screen, AlertsScreen))


async def test_a_restarted_service_shows_its_restart_count_in_the_list(tmp_path: Path) -> None:
    service = session(
        "svc", "echo up; sleep 0.2", 'restart = "always"\nbackoff = { initial = "10ms" }'
    )
    async with open_room(tmp_path, service) as (engine, app, pilot):
        table = app.session_list

        def reason() -> str:
            return str(table.get_cell("svc", "exit / reason"))

        await until(pilot, lambda: reason().startswith("↻2 · "), timeout=20)
        assert engine.session_info("svc").restarts >= 2
        await engine.terminate("svc")


async def test_g_starts_a_session_that_waits_for_the_operator(tmp_path: Path) -> None:
    body = session("manual", "echo started by hand; sleep 30", "autostart = false") + SLEEPER
    async with open_room(tmp_path, body) as (engine, app, pilot):
        await wait_state(engine, "sleeper", S.ACTIVE)
        await until(pilot, lambda: app.selected == "manual")
        assert engine.session_info("manual").waiting_for_start
        await pilot.press("down", "g")  # the sleeper starts by itself: refused, said why
        await until(pilot, lambda: app.selected == "sleeper")
        assert engine.session_info("manual").state is S.QUEUED
        await pilot.press("up", "g")
        await wait_text(engine, "manual", "started by hand")
        assert not engine.session_info("manual").waiting_for_start
        await engine.terminate("manual")
