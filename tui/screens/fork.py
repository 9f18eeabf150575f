"""The fork dialog: a copy of a session, with optional overrides (name, command, env, cwd).

Empty fields mean "as the original"; the result is the `overrides` mapping `Engine.fork`
takes, so the dialog knows nothing about scheduling.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any, ClassVar

from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from tui.incidents import Guarded

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from engine import SessionInfo


def parse_env(text: str) -> dict[str, str]:
    """`A=1 B="two words"` → {"A": "1", "B": "two words"}; raises ValueError on a bad item."""
    env = {}
    for item in shlex.split(text):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"not KEY=VALUE: {item!r}")
        env[key] = value
    return env


def overrides(name: str, command: str, env: str, cwd: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if name.strip():
        found["name"] = name.strip()
    if command.strip():
        found["command"] = command.strip()
    if env.strip():
        found["env"] = parse_env(env)
    if cwd.strip():
        found["cwd"] = cwd.strip()
    return found


class ForkScreen(Guarded, ModalScreen[dict[str, Any] | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, info: SessionInfo, default_name: str, default_cwd: str) -> None:
        """The defaults are the fork's if a field is left empty: the name the engine will
        give it and the working directory it inherits."""
        super().__init__(classes="dialog-screen")
        self.info = info
        self.default_name, self.default_cwd = default_name, default_cwd

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog fork"):
            yield Label(f"Fork {self.info.name}", classes="question")
            yield Label("Leave a field empty to keep the original.", classes="hint")
            info, cwd = self.info, self.default_cwd
            yield Input(placeholder=f"name (default: {self.default_name})", id="fork-name")
            yield Input(placeholder=f"command (default: {info.command})", id="fork-command")
            yield Input(placeholder="env KEY=VALUE … (default: the original's)", id="fork-env")
            yield Input(placeholder=f"working directory (default: {cwd})", id="fork-cwd")
            yield Label("", id="fork-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Fork", variant="primary", id="fork")
                yield Button("Cancel (Esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#fork-name", Input).focus()

    def _value(self, field: str) -> str:
        return self.query_one(f"#fork-{field}", Input).value

    def _submit(self) -> None:
        try:
            result = overrides(*(self._value(f) for f in ("name", "command", "env", "cwd")))
        except ValueError as exc:
            self.query_one("#fork-error", Label).update(str(exc))
            return
        self.dismiss(result)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "fork":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
