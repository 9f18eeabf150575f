"""The agents' keys stay theirs: a raw-mode program in a pane gets Esc and Esc Esc
byte for byte; only the leave key leaves, and every binding can be changed."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import pytest

from engine.states import SessionState
from tests.support import wait_state
from tests.tui_support import open_room, pane_text, session, until

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

# Like Claude Code: raw mode (no line discipline, no echo), every byte it reads kept.
RECORDER = """
import os, sys, tty
tty.setraw(0)
os.write(1, b"agent ready\\r\\n")
with open(sys.argv[1], "ab", buffering=0) as keys:
    while data := os.read(0, 1024):
        keys.write(data)
"""


def _agent(tmp_path: Path) -> tuple[str, Path]:
    script, received = tmp_path / "agent.py", tmp_path / "received"
    script.write_text(RECORDER)
    return session("agent", f"exec {sys.executable} {script} {received}"), received


def _received(path: Path) -> bytes:
    return path.read_bytes() if path.exists() else b""


async def test_escape_and_double_escape_reach_the_agent_and_ctrl_bracket_leaves(
    tmp_path: Path,
) -> None:
    body, received = _agent(tmp_path)
    async with open_room(tmp_path, body) as (engine, app, pilot):
        await wait_state(engine, "agent", SessionState.ACTIVE)
        await until(pilot, lambda: "agent ready" in pane_text(app, "agent"))
        await pilot.press("enter")
        pane = app.grid.panes["agent"]
        assert app.focused is pane
        await pilot.press("escape", "escape", "x", "escape", "y")
        await until(pilot, lambda: _received(received) == b"\x1b\x1bx\x1by")
        assert app.focused is pane  # still typing: Esc Esc is the agent's rewind
        await pilot.press("ctrl+right_square_bracket")
        assert app.focused is not None
        assert app.focused.id == "sessions"
        assert _received(received) == b"\x1b\x1bx\x1by"  # the leave key was not typed


async def test_keys_from_the_config_rebind_the_leave_key_and_the_actions(tmp_path: Path) -> None:
    body, received = _agent(tmp_path)
    keys = {"leave_pane": "ctrl+b", "pause": "P", "resume": "ctrl+r"}
    async with open_room(tmp_path, body, keys=keys) as (engine, app, pilot):
        await wait_state(engine, "agent", SessionState.ACTIVE)
        await until(pilot, lambda: "agent ready" in pane_text(app, "agent"))
        await pilot.press("enter")
        pane = app.grid.panes["agent"]
        await until(pilot, lambda: pane.has_focus)
        # the key that leaves now (the border follows focus a message later)
        await until(pilot, lambda: "Ctrl-B leaves" in str(pane.border_subtitle))
        leave = [b.binding for b in app.active_bindings.values() if b.binding.action == "leave"]
        assert [(b.key, app.get_key_display(b)) for b in leave] == [("ctrl+b", "Ctrl-B")]
        await pilot.press("ctrl+right_square_bracket", "z")  # no longer the leave key
        await until(pilot, lambda: _received(received) == b"\x1dz")
        await pilot.press("ctrl+b")
        assert app.focused is not None
        assert app.focused.id == "sessions"
        bound = {key: b.binding.action for key, b in app.active_bindings.items()}
        assert bound["P"] == "pause"
        assert bound.get("p") != "pause"
        await pilot.press("P")
        await wait_state(engine, "agent", SessionState.PAUSED)
        await pilot.press("ctrl+r")
        await wait_state(engine, "agent", SessionState.ACTIVE)
        assert _received(received) == b"\x1dz"


async def test_the_border_says_typing_from_the_focus_handler_before_textual_marks_focus(
    tmp_path: Path,
) -> None:
    """Textual runs a widget's own on_focus before Widget._on_focus sets `has_focus`: the
    border must not read `has_focus` there, or it says nothing about typing until some
    other change redraws it (seen as a flaky CI run of the test above)."""
    body, _ = _agent(tmp_path)
    async with open_room(tmp_path, body) as (engine, app, _pilot):
        await wait_state(engine, "agent", SessionState.ACTIVE)
        pane = app.grid.panes["agent"]
        assert not pane.has_focus
        pane.on_focus()  # as Textual calls it: has_focus is still False
        assert "TYPING" in str(pane.border_subtitle)
        pane.on_blur()
        assert "TYPING" not in str(pane.border_subtitle)
