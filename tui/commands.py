"""The command palette: the same actions as the keys, for any session, plus themes.

Session actions are offered per session ("Pause build"); ones that do not apply right now
are still listed, with the reason as their help, so the palette also explains.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Protocol

from textual.command import DiscoveryHit, Hit, Hits, Provider

from tui.actions import RUN_ACTIONS, SESSION_ACTIONS, VIEW_ACTIONS, why_not
from tui.screens.help import key_name

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from engine import SessionInfo


class Room(Protocol):
    """What the palette needs from the app."""

    def palette_sessions(self) -> list[SessionInfo]: ...
    async def run_session_action(self, action: str, session: str) -> None: ...
    async def run_view_action(self, action: str) -> None: ...
    def switch_theme(self, name: str) -> None: ...
    def theme_names(self) -> list[str]: ...


def room_commands(room: Room) -> Iterator[tuple[str, str, Callable[[], Awaitable[None] | None]]]:
    """(title, help, callback) for every command the palette offers; the palette awaits
    callbacks that return awaitables."""
    for info in room.palette_sessions():
        for action in SESSION_ACTIONS:
            reason = why_not(action, info)
            help_text = f"unavailable: {reason}" if reason else action.description
            callback = partial(room.run_session_action, action.action, info.name)
            yield (
                f"{action.label} {info.name}",
                f"{help_text} (key {key_name(action.key)})",
                callback,
            )
    for action in VIEW_ACTIONS + RUN_ACTIONS:
        title = action.label or action.description
        help_text = f"{action.description} (key {key_name(action.key)})"
        yield title, help_text, partial(room.run_view_action, action.action)
    for name in room.theme_names():
        yield f"Theme: {name}", "switch the colour theme", partial(room.switch_theme, name)


class RoomCommands(Provider):
    def _room(self) -> Room:
        app = self.app
        assert hasattr(app, "palette_sessions")
        return app  # type: ignore[return-value]

    async def discover(self) -> Hits:
        for title, help_text, callback in room_commands(self._room()):
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in room_commands(self._room()):
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
