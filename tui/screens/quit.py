"""Quitting a room attached to a served engine: detach (sessions keep running, the
tmux model) or stop every session and the service. Cancel keeps the room open."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

from tui.incidents import Guarded
from tui.wording import agreeing, counted

if TYPE_CHECKING:
    from textual.app import ComposeResult

QuitChoice = Literal["detach", "stop"]


class QuitScreen(Guarded, ModalScreen[QuitChoice | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("d", "answer('detach')", "Detach"),
        Binding("s", "answer('stop')", "Stop all"),
        Binding("n,c,escape", "answer(None)", "Cancel"),
    ]

    def __init__(self, running: int) -> None:
        super().__init__(classes="dialog-screen")
        self.running = running

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            keep = agreeing(self.running, "keeps", "keep")
            yield Label(
                f"Quit: detach ({counted(self.running, 'session')} {keep} running; "
                "attach again later)"
                " or stop all sessions and the engine?",
                classes="question",
            )
            with Horizontal(classes="buttons"):
                yield Button("Detach (d)", variant="primary", id="detach")
                yield Button("Stop all (s)", variant="error", id="stop")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#detach", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_answer(event.button.id if event.button.id != "cancel" else None)

    def action_answer(self, answer: str | None) -> None:
        self.dismiss("stop" if answer == "stop" else "detach" if answer == "detach" else None)
