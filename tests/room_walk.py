"""A seeded random walk through the control room, for tests/test_tui_fuzz.py.

Each step is what an operator (or the world) might do next: a key of the key table, a
palette command, an answer to whatever dialog is open, typing into a focused pane, or an
engine-side change (fork, restart, pause) the room only hears about through its events.
Two rules keep the room open: the `anchor` session is never terminated and every quit is
cancelled, so the walk explores the room rather than ending it.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from textual import events
from textual.command import CommandPalette
from textual.widgets import Input

from engine import FINAL_STATES, SwarmdeckError
from tui.actions import ACTIONS
from tui.commands import room_commands
from tui.screens.confirm import ConfirmScreen
from tui.screens.fork import ForkScreen
from tui.screens.help import HelpScreen
from tui.screens.quit import QuitScreen
from tui.screens.search import PromptScreen
from tui.widgets.terminal_pane import TerminalPane

if TYPE_CHECKING:
    import random

    from textual.pilot import Pilot

    from engine import Engine
    from tui.app import ControlRoom

ANCHOR = "anchor"
MAX_SESSIONS = 14
"""Forks stop here: enough for a second page of panes (9 per page)."""
ROOM_KEYS = [a.key for a in ACTIONS] + ["j", "k", "up", "down", "escape", "n", "N", "ctrl+p"]
TEXTS = ["", "anchor", "active", "paused", "state:f", "state:completed", "t", "zzz", "tick"]
COMMANDS = ["echo forked; sleep 0.3", "exit 4", "exec sleep 600", "seq 1 40", "printf 'a\\tb\\n'"]
CHARACTERS = {
    **{"enter": "\r", "escape": "\x1b", "tab": "\t"},
    **{"backslash": "\\", "slash": "/", "question_mark": "?"},
}
SIZES = [(140, 45), (100, 30), (60, 20), (200, 60)]


class RoomWalk:
    """One walk: `step()` does one random thing and returns what, for the failure report."""

    def __init__(self, rng: random.Random, engine: Engine, app: ControlRoom, pilot: Pilot[None]):
        self.rng, self.engine, self.app, self.pilot = rng, engine, app, pilot
        self.forks = 0

    async def press(self, *keys: str) -> None:
        """Keys as the terminal driver delivers them, each handled before the next. Not
        `Pilot.press`: it also waits for the process to go idle, up to 2 s a key while
        the engine works in the same process."""
        for key in keys:
            character = key if len(key) == 1 else CHARACTERS.get(key)
            self.app.post_message(events.Key(key, character))
            await self.pilot.pause(0)

    async def step(self) -> str:
        screen = self.app.screen
        if screen is not self.app.screen_stack[0]:
            return await self._dialog(screen)
        if isinstance(self.app.focused, TerminalPane):
            return await self._in_pane()
        roll = self.rng.random()
        if roll < 0.12:
            return await self._world()
        if roll < 0.22:
            return await self._palette_command()
        if roll < 0.24:
            theme = self.rng.choice(list(self.app.available_themes))
            self.app.switch_theme(theme)
            return f"theme {theme}"
        if roll < 0.26:
            size = self.rng.choice(SIZES)
            await self.pilot.resize_terminal(*size)
            return f"resize {size}"
        if roll < 0.29 and (panes := [p for p in self.app.grid.panes.values() if p.display]):
            pane = self.rng.choice(panes)
            await self.pilot.click(pane, offset=(self.rng.randrange(4), self.rng.randrange(3)))
            return f"click {pane.session}'s pane"
        key = self.rng.choice(ROOM_KEYS)
        await self.press(key)
        return f"key {key} (selected {self.app.selected})"

    # -- dialogs --------------------------------------------------------------------------
    async def _dialog(self, screen: object) -> str:
        rng, press = self.rng, self.press
        if isinstance(screen, ConfirmScreen):
            keep = ANCHOR in screen.question or "quit" in screen.question.lower()
            answer = "n" if keep else rng.choice(["y", "n", "escape"])
            await press(answer)
            return f"confirm {screen.question!r}: {answer}"
        if isinstance(screen, QuitScreen):
            answer = rng.choice(["n", "c", "escape"])  # quit, cancelled
            await press(answer)
            return f"quit: {answer}"
        if isinstance(screen, ForkScreen):
            return await self._fork_dialog()
        if isinstance(screen, PromptScreen):
            text = rng.choice(TEXTS)
            end = rng.choice(["enter", "enter", "escape"])
            screen.query_one(Input).value = text  # typing is Textual's part, and slow
            await press(end)
            return f"prompt {screen.prompt_title!r}: {text!r} {end}"
        if isinstance(screen, HelpScreen):
            key = rng.choice(["escape", "q", "question_mark"])
            await press(key)
            return f"help: {key}"
        if isinstance(screen, CommandPalette):
            text = rng.choice(["p", "z", "t", "s", "x"])
            await press(text, "escape")
            return f"palette typed {text!r}, closed"
        await press("escape")
        return f"escape from {type(screen).__name__}"

    async def _fork_dialog(self) -> str:
        if len(self.engine.sessions) >= MAX_SESSIONS:
            await self.press("escape")
            return "fork: cancelled (enough sessions)"
        self.forks += 1
        name = self.rng.choice(["", f"k{self.forks}", ANCHOR])  # default, new, taken
        command = self.rng.choice(["", *COMMANDS])
        dialog = self.app.screen
        dialog.query_one("#fork-name", Input).value = name
        dialog.query_one("#fork-command", Input).value = command
        await self.press("enter")
        return f"fork dialog: name {name!r}, command {command!r}"

    # -- a focused pane -----------------------------------------------------------------------
    async def _in_pane(self) -> str:
        roll = self.rng.random()
        if roll < 0.4:
            await self.press("l", "s", "enter")
            return "typed into the pane"
        if roll < 0.5:
            await self.press("shift+pageup")
            return "shift+pageup in the pane"
        keys = ["ctrl+right_square_bracket"] if roll < 0.8 else ["escape", "escape"]
        await self.press(*keys)
        return f"left the pane: {keys}"

    # -- the palette and the world ------------------------------------------------------------
    async def _palette_command(self) -> str:
        """A palette entry, run as the palette runs it: `call_later` on the app (the
        palette's own UI is tried by `ctrl+p`)."""
        entries = [e for e in room_commands(self.app) if not self._forbidden(e[0])]
        title, _, callback = self.rng.choice(entries)
        self.app.call_later(callback)
        await self.pilot.pause(0)
        return f"palette: {title}"

    def _forbidden(self, title: str) -> bool:
        return title == f"Terminate {ANCHOR}" or (
            title.startswith("Fork ") and len(self.engine.sessions) >= MAX_SESSIONS
        )

    async def _world(self) -> str:
        """The engine changes under the room: sessions forked, restarted, paused, fed."""
        rng, engine = self.rng, self.engine
        name = rng.choice(list(engine.sessions))
        state = engine.sessions[name].state
        with contextlib.suppress(SwarmdeckError):  # the engine may refuse: fine
            if rng.random() < 0.3 and len(engine.sessions) < MAX_SESSIONS:
                forked = await engine.fork(name, {"command": rng.choice(COMMANDS)})
                return f"engine: fork {name} as {forked}"
            if state in FINAL_STATES:
                await engine.restart(name)
                return f"engine: restart {name}"
            if rng.random() < 0.5:
                await (engine.pause(name) if rng.random() < 0.5 else engine.resume(name))
                return f"engine: pause/resume {name} ({state})"
            await engine.send_input(name, b"echo world\r")
            return f"engine: input to {name}"
        return f"engine: refused for {name} ({state})"
