"""Every key, generated from the action table so the help cannot drift from the bindings."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

from tui.actions import ACTIONS, PANE_KEYS
from tui.incidents import Guarded

if TYPE_CHECKING:
    from textual.app import ComposeResult

KEY_NAMES = {
    "slash": "/",
    "backslash": "\\",
    "question_mark": "?",
    "pageup": "PageUp",
    "pagedown": "PageDown",
    "enter": "Enter",
    "exclamation_mark": "!",
}


def key_name(key: str) -> str:
    return KEY_NAMES.get(key, key)


class HelpScreen(Guarded, ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help"):
            yield Label("swarmdeck keys", classes="question")
            yield DataTable[str](id="help-keys", cursor_type="none", show_cursor=False)
            yield Label("Esc, q or ? closes this screen.", classes="hint")

    def on_mount(self) -> None:
        table = self.query_one("#help-keys", DataTable)
        table.add_columns("key", "action")
        for action in ACTIONS:
            table.add_row(key_name(action.key), action.description)
        for key, text in PANE_KEYS:
            table.add_row(key, text)

    def action_close(self) -> None:
        self.dismiss(None)
