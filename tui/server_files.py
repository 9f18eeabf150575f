"""What an attached room may not do: write files on the machine that serves it.

An attached room (`swarmdeck attach`, and so every SSH connection's room) runs as the
user who serves the engine, on that user's machine, while the person at the keyboard may
be a viewer from anywhere. Textual's palette offers "Screenshot", which writes an SVG
into the server user's ~/Downloads (or the working directory), without limit. So attached
rooms get Textual's system commands minus every one that touches the filesystem, and
`deliver_screenshot` (behind that command and `action_screenshot`) refuses there too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from textual.app import SystemCommand

FILE_WRITING_COMMANDS = frozenset({"Screenshot"})
REFUSED = "screenshots are not saved from an attached room: they would land on the server"


def without_file_commands(commands: Iterable[SystemCommand]) -> Iterator[SystemCommand]:
    """Textual's system commands, minus those that write files."""
    return (command for command in commands if command.title not in FILE_WRITING_COMMANDS)
