"""Typing mode is unmistakable, and keys meant for a session never run as room commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from textual import events
from textual.widgets._footer import FooterKey

from engine.states import SessionState
from tests.support import wait_state
from tests.tui_support import open_room, pane_text, session, until
from tui.screens.fork import ForkScreen

if TYPE_CHECKING:
    from pathlib import Path

    from tui.app import ControlRoom

pytestmark = pytest.mark.anyio
S = SessionState
KEY_NAMES = {" ": "space", "$": "dollar_sign", "(": "left_parenthesis", ")": "right_parenthesis",
             "*": "asterisk", "-": "minus"}  # fmt: skip
DONE = session("done", "echo finished")
SHELL = session(
    "shell", "PS1='$ ' exec bash --norc -i", 'stop_signal = "HUP"\nstop_grace = "500ms"'
)


def footer(app: ControlRoom) -> list[tuple[str, str]]:
    return [(key.key_display, key.description) for key in app.screen.query(FooterKey)]


def notes(app: ControlRoom) -> str:
    return "\n".join(n.message for n in app._notifications)


async def test_a_refused_enter_swallows_the_line_typed_next_until_escape(
    tmp_path: Path,
) -> None:
    async with open_room(tmp_path, DONE + SHELL) as (engine, app, pilot):
        app.session_list.hold.seconds = 60  # the pause that ends a hold never comes here
        await wait_state(engine, "done", S.COMPLETED)
        await wait_state(engine, "shell", S.ACTIVE)
        await pilot.press("enter")  # on "done": refused
        assert "keys typed now are ignored" in notes(app).lower()
        await pilot.press(*"sfty", "enter")  # sort, fork, terminate + yes, if run as commands
        await pilot.pause(0.1)
        assert app.session_list.ordering == "deck order"
        assert not isinstance(app.screen, ForkScreen)
        assert [s.name for s in engine.list_sessions()] == ["done", "shell"]
        await pilot.press("escape", "s")  # Esc ends the hold: the room has its keys again
        assert app.session_list.ordering != "deck order"


async def test_typing_mode_marks_the_pane_and_the_footer_shows_only_how_to_leave(
    tmp_path: Path,
) -> None:
    async with open_room(tmp_path, SHELL) as (engine, app, pilot):
        await wait_state(engine, "shell", S.ACTIVE)
        assert ("p", "Pause") in footer(app)
        await pilot.press("enter")
        pane = app.grid.panes["shell"]
        assert pane.has_class("-typing")
        await until(pilot, lambda: footer(app) == [("Ctrl-]", "leaves")])
        await pilot.press("ctrl+right_square_bracket")
        assert not pane.has_class("-typing")
        await until(pilot, lambda: ("p", "Pause") in footer(app))


async def test_keys_typed_after_a_session_ends_under_the_operator_are_swallowed(
    tmp_path: Path,
) -> None:
    async with open_room(tmp_path, SHELL) as (engine, app, pilot):
        app.session_list.hold.seconds = 60
        await wait_state(engine, "shell", S.ACTIVE)
        await pilot.press("enter", *"exit", "enter")
        await until(pilot, lambda: app.focused is app.session_list)
        assert "typing ended" in notes(app)
        await pilot.press("R", "s")  # restart and sort, if run as commands
        await pilot.pause(0.1)
        assert len(engine.session_info("shell").attempts) == 1
        assert app.session_list.ordering == "deck order"


async def test_keys_queued_behind_an_accepted_enter_go_to_the_session_not_the_room(
    tmp_path: Path,
) -> None:
    """A busy room reads j, Enter and the line typed after them from one queue: the focus
    moves only after that, so the list receives them; they are still the session's."""
    sleeper = session("sleeper", "exec sleep 30")
    async with open_room(tmp_path, sleeper + SHELL) as (engine, app, pilot):
        await wait_state(engine, "shell", S.ACTIVE)
        line = "echo typed-$((6*7)) fy"  # f forks, t and y terminate, if run as commands
        keys = [("j", "j"), ("enter", None), *((KEY_NAMES.get(c, c), c) for c in line)]
        keys.append(("enter", None))
        for key, character in keys:  # all queued before the room handles the first
            app.post_message(events.Key(key, character))
        await until(pilot, lambda: "typed-42" in "\n".join(pane_text(app, "shell")))
        assert [s.name for s in engine.list_sessions()] == ["sleeper", "shell"]
        assert engine.session_info("shell").state is S.ACTIVE
        assert not isinstance(app.screen, ForkScreen)
