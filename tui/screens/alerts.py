"""The alert history: every alert raised and cleared this run, newest first."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, ClassVar

from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

from engine import AlertRaised

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from engine import AlertCleared


def alert_rows(
    history: list[AlertRaised | AlertCleared], active: set[tuple[str, str]], redact: bool = False
) -> list[tuple[str, str, str, str]]:
    """(time, state, alert, text) per event, newest first; the latest raise of an alert
    still in force is `active`, any other `raised`."""
    rows, seen = [], set()
    for event in reversed(history):
        clock = "--:--:--" if redact else time.strftime("%H:%M:%S", time.localtime(event.at))
        key = (event.alert, event.subject)
        if isinstance(event, AlertRaised):
            state = "active" if key in active and key not in seen else "raised"
        else:
            state = "cleared"
        seen.add(key)
        rows.append((clock, state, event.alert, event.text))
    return rows


class AlertsScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,exclamation_mark", "close", "Close")]

    def __init__(
        self, history: list[AlertRaised | AlertCleared], active: set[tuple[str, str]]
    ) -> None:
        super().__init__()
        self.rows = alert_rows(history, active)

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help"):
            yield Label(f"alerts ({len(self.rows)})", classes="question")
            if not self.rows:
                yield Label("none so far (thresholds: the deck's [alerts] table)", classes="hint")
            yield DataTable[str](id="alert-list", cursor_type="none", show_cursor=False)
            yield Label("Esc, q or ! closes this screen.", classes="hint")

    def on_mount(self) -> None:
        table = self.query_one("#alert-list", DataTable)
        table.add_columns("time", "state", "alert", "what")
        for row in self.rows:
            table.add_row(*row)

    def action_close(self) -> None:
        self.dismiss(None)
