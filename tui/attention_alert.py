"""What the room does when a session starts waiting for the operator, besides the mark:
ring the terminal's bell and run `notify-send`, each if config.toml's `[attention]` asks.

Per person, not per deck: the deck says what marks a session (docs/attention.md), the
person how loudly their room says so. `notify-send` runs detached and is never awaited,
so a slow or missing notification daemon cannot hold the room.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from collections.abc import Callable

    from engine import AttentionChanged

REASONS = {
    "idle": "waits at a prompt",
    "bell": "rang the bell",
    "notify": "sent a notification",
    "bus": "asks for you",
}


class AttentionAlert(BaseModel):
    """config.toml's `[attention]` table."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    bell: bool = Field(False, description="ring the terminal's bell when a session is marked")
    notify_send: bool = Field(
        False, description="run notify-send (where installed) when a session is marked"
    )


def describe(event: AttentionChanged) -> str:
    """`agent rang the bell: build done`."""
    said = f": {event.text}" if event.text else ""
    return f"{event.session} {REASONS.get(event.reason, event.reason)}{said}"


def alert(config: AttentionAlert, event: AttentionChanged, bell: Callable[[], None]) -> None:
    """A new mark (not a clearing): the bell and the desktop notification asked for."""
    if not event.reason:
        return
    if config.bell:
        bell()
    program = shutil.which("notify-send") if config.notify_send else None
    if program is not None:
        summary = f"swarmdeck: {event.session}"
        subprocess.Popen(
            [program, "--app-name=swarmdeck", summary, describe(event)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
