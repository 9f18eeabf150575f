"""The operator's actions as data: key, name, help text and when each one applies.

Bindings, the footer, the help screen and the command palette are all built from this one
table, and `why_not` is the one place that says why an action does not apply right now.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine import FINAL_STATES, LIVE_STATES, SessionState

if TYPE_CHECKING:
    from collections.abc import Mapping

    from engine import SessionInfo

S = SessionState
ACTIVE, PAUSED = frozenset({S.ACTIVE}), frozenset({S.PAUSED})
STOPPABLE = frozenset({S.QUEUED, S.SPAWNING, S.ACTIVE, S.PAUSED})
READ_ONLY = "read-only viewer"


@dataclass(frozen=True, slots=True)
class OperatorAction:
    key: str
    action: str
    label: str
    description: str
    needs: frozenset[SessionState] | None = None
    """States the selected session must be in; None = not about a session."""
    show: bool = True
    control: bool = False
    """Changes a session (or types into it): refused to a read-only viewer."""


SESSION_ACTIONS: tuple[OperatorAction, ...] = (
    OperatorAction("p", "pause", "Pause", "pause the session (SIGSTOP)", ACTIVE, control=True),
    OperatorAction("r", "resume", "Resume", "resume a paused session", PAUSED, control=True),
    OperatorAction(
        "t", "terminate", "Terminate", "stop the session (asks first)", STOPPABLE, control=True
    ),
    OperatorAction(
        "f", "fork", "Fork", "start a copy, with optional overrides", frozenset(S), control=True
    ),
    OperatorAction(
        "R", "restart", "Restart", "run a finished session again", FINAL_STATES, control=True
    ),
    OperatorAction(
        "enter", "focus_pane", "Type", "type into the session", LIVE_STATES, control=True
    ),
    OperatorAction("slash", "search", "Search", "search the pane's history", frozenset(S)),
    OperatorAction(
        "v",
        "copy_mode",
        "Copy",
        "copy from the pane's history (v V select, y copies)",
        frozenset(S),
        show=False,
    ),
)
VIEW_ACTIONS: tuple[OperatorAction, ...] = (
    OperatorAction("z", "zoom", "Zoom", "give the selected pane the whole screen"),
    OperatorAction("pageup", "history_up", "History", "scroll back through the pane", None, False),
    OperatorAction("pagedown", "history_down", "", "scroll forward; live at the end", None, False),
    OperatorAction("s", "sort", "Sort", "cycle the session list's sort order"),
    OperatorAction(
        "a",
        "attention_first",
        "Waiting",
        "sessions waiting for you first (again: off)",
        show=False,
    ),
    OperatorAction("backslash", "filter", "Filter", "filter sessions by name or state"),
    OperatorAction("b", "toggle_panels", "Panels", "show or hide the pool and bus panels"),
    OperatorAction("question_mark", "help", "Help", "every key, and what it does"),
    OperatorAction("q", "quit_room", "Quit", "quit: detach (sessions keep running) or stop all"),
)
RUN_ACTIONS: tuple[OperatorAction, ...] = (  # not about one session (tui/fleet_actions.py)
    OperatorAction(
        "P", "pause_all", "Pause all", "pause every shown active session", show=False,
        control=True,
    ),
    OperatorAction(
        "U", "resume_all", "Resume all", "resume every shown paused session", show=False,
        control=True,
    ),
    OperatorAction(
        "m", "set_parallel", "Parallel", "change max_parallel now (a number or auto)",
        show=False, control=True,
    ),
    OperatorAction(
        "exclamation_mark", "alerts", "Alerts", "every alert raised and cleared", show=False
    ),
)  # fmt: skip
ACTIONS: tuple[OperatorAction, ...] = SESSION_ACTIONS + VIEW_ACTIONS + RUN_ACTIONS
BY_NAME: dict[str, OperatorAction] = {a.action: a for a in ACTIONS}
LEAVE_PANE = OperatorAction(
    "ctrl+right_square_bracket", "leave_pane", "Leave", "leave the pane you are typing in"
)
"""Read by the focused pane itself (every other key goes to the session). Not Esc Esc:
Claude Code, Codex CLI and Copilot CLI use Esc Esc (rewind) and Esc (interrupt)."""
KEYMAP_NAMES: frozenset[str] = frozenset({*BY_NAME, LEAVE_PANE.action})
"""What `[keys]` in config.toml may rebind (tui/user_config.py)."""


def keys_of(action: OperatorAction, keymap: Mapping[str, str]) -> list[str]:
    """The keys `action` answers to under `keymap` (Textual's form: "a,ctrl+b")."""
    return [key.strip() for key in keymap.get(action.action, action.key).split(",")]


def by_key(keymap: Mapping[str, str]) -> dict[str, OperatorAction]:
    return {key: a for a in ACTIONS for key in keys_of(a, keymap)}


PANE_KEYS: tuple[tuple[str, str], ...] = (
    ("j / k, ↑ / ↓", "select the next / previous session"),
    ("every key", "goes to the session while its pane has focus"),
    ("Ctrl-] ([keys] leave_pane)", "leave the pane (focus back to the session list)"),
    ("PageUp / PageDown, wheel", "scroll back through the pane's history"),
    ("in copy mode (v)", "h j k l g G 0 $ move, v / V select, y copies, Esc cancels"),
    ("mouse drag in history", "select; released, it is copied (OSC 52)"),
    ("Shift-PageUp / PageDown", "scroll history while typing in a pane"),
    ("n / N", "next / previous match; Esc: back to live"),
    ("Ctrl-p", "command palette: every action, and theme switching"),
    ("Ctrl-q", "quit, as q"),
)


def why_not(
    action: OperatorAction, info: SessionInfo | None, read_only: bool = False
) -> str | None:
    """None when `action` applies to the selected session, else a short reason; a
    viewer's control keys get the reason even though the engine would refuse them too."""
    if read_only and action.control:
        return READ_ONLY
    if action.needs is None:
        return None
    if info is None:
        return "no session selected"
    if info.state in action.needs:
        return None
    wanted = " or ".join(sorted(action.needs))
    return f"{info.name} is {info.state}; {action.label.lower()} needs {wanted}"
