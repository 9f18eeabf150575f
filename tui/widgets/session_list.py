"""The session list: one row per session, coloured by state, sortable and filterable.

Rows are keyed by session name, so a state change updates a few cells in place; only a
new sort or filter rebuilds the table. State colours come from theme variables.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from engine import LIVE_STATES, PRIORITY_RANK
from tui.incidents import Guarded
from tui.key_hold import KeyHold

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from textual import events

    from engine import SessionInfo
    from tui.widgets.terminal_pane import TerminalPane

COLUMNS = ("session", "state", "pid", "time", "att", "pri", "exit / reason")
# Fixed widths: a column sized by whichever states and reasons happened to be seen would
# make the layout depend on timing (and the snapshots flaky).
WIDTHS = (16, 10, 7, 7, 3, 8, 60)
DECK_ORDER = "deck order"
SORTS: dict[str, Callable[[SessionInfo], Any]] = {
    DECK_ORDER: lambda info: 0,
    "name": lambda info: info.name,
    "state": lambda info: str(info.state),
    "run time": lambda info: -(runtime(info) or 0.0),
    "priority": lambda info: PRIORITY_RANK.get(info.priority, PRIORITY_RANK["normal"]),
}
MASK = "·"
ATTENTION = "● "
"""Before the name of a session waiting for the operator (docs/attention.md)."""
STATE_PREFIX = 3
"""A filter this long may be the start of a state (`fail`): `a` alone stays a name part."""
MOVES = {"j": "action_cursor_down", "down": "action_cursor_down", "k": "action_cursor_up",
         "up": "action_cursor_up"}  # fmt: skip
PID = re.compile(r"pid \d+")


def runtime(info: SessionInfo, now: float | None = None) -> float | None:
    if info.started_at is None:
        return None
    return (info.ended_at or now or time.time()) - info.started_at


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def attempt_number(info: SessionInfo) -> int:
    """Finished attempts, plus the one under way."""
    return info.attempt_count + (1 if info.state in LIVE_STATES else 0)


def shown_state(info: SessionInfo) -> str:
    """The state column: a live session's detail when it has one (a service is "ready",
    a job stopped by job control "stopped"); the state otherwise."""
    return info.detail.split(" ", 1)[0] if info.detail else str(info.state)


def outcome(info: SessionInfo) -> str:
    if info.detail and info.detail != "ready":  # "stopped (tty output) · pid 42"
        return f"{info.detail} · {info.reason}" if info.reason else info.detail
    if info.exit_code is not None and not info.reason.startswith("exit"):
        return f"exit {info.exit_code} · {info.reason}" if info.reason else f"exit {info.exit_code}"
    return info.reason


def matches(info: SessionInfo, text: str) -> bool:
    """Filter text: `state:paused`, the start of a state (`fail` → failed) or of what the
    state column shows (`ready`), at least STATE_PREFIX letters, or part of the name."""
    text = text.strip().lower()
    if not text:
        return True
    if text.startswith("state:"):
        return str(info.state).startswith(text[6:].strip())
    states = (str(info.state), shown_state(info))
    if len(text) >= STATE_PREFIX and any(state.startswith(text) for state in states):
        return True
    return text in states or text in info.name.lower()


class SessionList(Guarded, DataTable[Text]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("pageup", "app.history_up", "History", show=False),
        Binding("pagedown", "app.history_down", "History", show=False),
    ]

    def __init__(self, redact: bool = False) -> None:
        super().__init__(id="sessions", cursor_type="row", zebra_stripes=False)
        self.redact = redact
        self.infos: dict[str, SessionInfo] = {}
        self.order: list[str] = []
        self.ordering = DECK_ORDER
        self.attention_order: dict[str, int] | None = None
        """Set by `sort_attention_first`: each session's place then. Kept, not live, so
        a mark that clears (the operator types into that pane) moves no pane under them."""
        self.filter = ""
        self.colours: Mapping[str, str] = {}
        self._rows: list[str] = []
        self.hold = KeyHold()
        """Started when keys meant for a session would land here (tui/key_hold.py)."""
        self.typing_into: TerminalPane | None = None
        """Enter was accepted: keys that still reach the list (queued before the focus
        moved) are that pane's, not room commands."""
        self.enter_types: Callable[[], TerminalPane | None] | None = None
        """The room's answer to Enter: the pane it starts typing into, or None."""
        self.copying: TerminalPane | None = None
        """A pane in copy mode (`v`): every key is its own until copy mode ends."""

    def on_key(self, event: events.Key) -> None:
        """Keys are read here in order, but bindings run only once a key has bubbled up to
        the room, after the list has read the next ones: so what decides where the next
        keys go (Enter, and the moves Enter depends on) is done here, not by bindings."""
        copying = self.copying
        if copying is not None and copying.is_attached and copying.copy_cursor is not None:
            copying.copy_key(event.key, event.character)
            event.stop()
            event.prevent_default()
            return
        self.copying = None
        free = self.typing_into is None and not self.hold.active
        move = MOVES.get(event.key) if free else None
        if free and event.key == "enter" and self.enter_types is not None:
            self.typing_into = self.enter_types()  # the room still sees Enter (its notice)
            return
        if move is not None:
            getattr(self, move)()
        elif self.typing_into is not None:
            self.typing_into.type_key(event.key, event.character)
        elif not self.hold.swallows(event.key, event.is_printable):
            return
        event.stop()  # before any binding of the list or the room sees it
        event.prevent_default()

    def on_focus(self) -> None:
        self.typing_into = None  # back from the pane: keys are the room's again

    def on_mount(self) -> None:
        for column, width in zip(COLUMNS, WIDTHS, strict=True):
            self.add_column(column, key=column, width=width)

    @property
    def selected(self) -> str | None:
        if not self.row_count:
            return None
        return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)

    def shown(self) -> list[str]:
        """The sessions the rows show, top to bottom: what a row index refers to."""
        return list(self._rows)

    def wanted(self) -> list[str]:
        """The sessions the filter and order pick now; may differ from the rows when
        sorted by run time, which moves on between rebuilds."""
        wanted = [n for n in self.order if matches(self.infos[n], self.filter)]
        if self.ordering != DECK_ORDER:
            wanted.sort(key=lambda name: SORTS[self.ordering](self.infos[name]))
        order = self.attention_order
        if order is not None:
            wanted.sort(key=lambda name: order.get(name, len(order)))
        return wanted

    def sort_attention_first(self) -> int:
        """Sessions waiting for the operator on top now (oldest mark first), the rest in
        the current order; how many wait."""
        self.attention_order = None
        ranked = sorted(self.wanted(), key=lambda name: _attention_rank(self.infos[name]))
        self.attention_order = {name: place for place, name in enumerate(ranked)}
        self.rebuild()
        return sum(1 for name in ranked if self.infos[name].attention)

    def set_infos(self, infos: list[SessionInfo]) -> None:
        self.infos = {info.name: info for info in infos}
        self.order = [info.name for info in infos]
        self.rebuild()

    def rebuild(self) -> None:
        keep = self.selected
        self.clear()
        self._rows = self.wanted()
        for name in self._rows:
            self.add_row(*self._cells(self.infos[name]), key=name)
        if keep in self._rows:
            self.move_cursor(row=self._rows.index(keep), animate=False)

    def update_info(self, info: SessionInfo) -> bool:
        """Update a row in place; rebuild only when the rows would change (visibility or
        order). True when they did. A session the filter hides has no row: only its info
        is kept, for when the filter changes."""
        if info.name not in self.infos:
            self.order.append(info.name)
        self.infos[info.name] = info
        if self.wanted() != self._rows:
            self.rebuild()
            return True
        if info.name not in self._rows:
            return False
        for column, cell in zip(COLUMNS, self._cells(info), strict=True):
            self.update_cell(info.name, column, cell)
        return False

    def tick(self) -> None:
        """Refresh the run time of live sessions (once a second)."""
        if self.redact:
            return
        now = time.time()
        for name in self.shown():
            info = self.infos[name]
            if info.state in LIVE_STATES:
                self.update_cell(name, "time", Text(format_duration(runtime(info, now))))

    def _cells(self, info: SessionInfo) -> list[Text]:
        colour = self.colours.get(f"state-{info.state}", "")
        pid = MASK if self.redact and info.pid else str(info.pid or "")
        seconds = runtime(info)
        taken = MASK if self.redact and seconds is not None else format_duration(seconds)
        return [
            self._name_cell(info),
            Text(shown_state(info), style=f"bold {colour}".strip()),
            Text(pid),
            Text(taken, justify="right"),
            Text(str(attempt_number(info)), justify="right"),
            Text(info.priority),
            Text(PID.sub(f"pid {MASK}", outcome(info)) if self.redact else outcome(info)),
        ]

    def _name_cell(self, info: SessionInfo) -> Text:
        if not info.attention:
            return Text(info.name)
        mark = Text(ATTENTION, style=f"bold {self.colours.get('warning', '')}".strip())
        return mark + Text(info.name)


def _attention_rank(info: SessionInfo) -> tuple[bool, float]:
    return (not info.attention, info.attention_since or 0.0)
