"""What one SSH client may cost the server: bounded input, sizes and window changes.

A client can type faster than its room reads (400 MB of keystrokes grew the server by
412 MB), ask for a 65535x65535 window (a room then took 2.6 GB), or send window changes
in a loop (20,000 in 6 s stalled the control socket 1.6 s and wrote 4.2 MB of audit log).
So input is held back at the SSH channel once INPUT_HIGH bytes wait for the room, a
window is clamped to MAX_COLS x MAX_ROWS (a wall of 4K screens; far beyond any real
terminal), and window changes reach the room at most every RESIZE_EVERY seconds and the
audit log every AUDIT_RESIZE_EVERY, always ending on the latest size.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

INPUT_HIGH = 256 * 1024  # bytes queued for the room before the client is held back
INPUT_LOW = 64 * 1024  # ... and let go again
MAX_COLS, MAX_ROWS = 500, 200
RESIZE_EVERY = 0.1
AUDIT_RESIZE_EVERY = 5.0
SESSIONS_PER_CONNECTION = 1  # each one is a room: a connection cannot open more than one

T = TypeVar("T")


def clamp_size(cols: int, rows: int, fallback: tuple[int, int]) -> tuple[int, int]:
    """A usable window size: 0 (unknown) keeps the fallback, huge ones are cut down."""
    return min(cols or fallback[0], MAX_COLS), min(rows or fallback[1], MAX_ROWS)


class Coalescer(Generic[T]):
    """Apply the first value at once, then at most one per `interval`: the latest, with
    how many values it stands for. The last value submitted is always applied."""

    def __init__(self, interval: float, apply: Callable[[T, int], None]) -> None:
        self._interval, self._apply = interval, apply
        self._latest: T | None = None
        self._count = 0
        self._timer: asyncio.TimerHandle | None = None

    def submit(self, value: T) -> None:
        self._latest = value
        self._count += 1
        if self._timer is None:
            self._fire()

    def _fire(self) -> None:
        value, count = self._latest, self._count
        self._latest, self._count = None, 0
        if value is not None:
            self._apply(value, count)
            self._timer = asyncio.get_running_loop().call_later(self._interval, self._due)

    def _due(self) -> None:
        self._timer = None
        self._fire()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
