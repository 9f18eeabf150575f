"""Turns for flooding PTY readers: at most one flood's read is emulated per loop turn.

Why: every PTY reader wakes in the same select round when many sessions flood, and each
read it takes (up to READ_BUDGET bytes) costs ~2 ms of emulation; eight of them made one
loop turn ~15 ms, and a typed key's echo, the command carrying it and the push of its
screen each waited a whole turn (three hops: ~50 ms). Readers that are not interactive
take turns here: one holds the turn across a loop turn (`checkpoint` inside the held
region), so whatever became ready meanwhile (the interactive session's read, a command,
a viewer's write) runs before the next flood's slice. Interactive readers never wait here
(engine/terminals/terminal.py). Every byte is still read and emulated, in order: a flood
only waits for its turn, and throughput is the same while the loop is busy. Turns are
taken only while some session is interactive (`contended`): with nobody typing, floods read
back to back as before, so ingest keeps its speed (bench/ingest.py).

While someone types (a key in the last second, not a pane merely focused), the turn is
also held for a rest as long as the slice took (FLOOD_REST): floods together get at most
about half of the loop's time, and the CPU that frees goes to the typed key's hops (the
room, tmux, the relay) instead of to emulating the next slice of a flood nobody reads at
that speed. On 2 cores with eight floods the engine was otherwise runnable all the time,
and every hop of a key queued behind it (docs/performance.md). The rest costs floods about
two thirds of their speed (bench/keys.py: ~7 against ~20 MB/s on a quiet machine), so an
operator who sits in a pane reading it does not pay it: focus alone only takes turns.
"""

from __future__ import annotations

import math
import time
from collections import deque
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
from anyio.lowlevel import checkpoint

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


FLOOD_REST = 1.0
"""Rest after a flood's slice while someone is interactive, as a share of the slice's time."""
MAX_REST = 0.02  # s: one slice's rest never exceeds this (a slow slice is not punished twice)
REST_QUANTUM = 0.002
"""Rest is taken once the slices have run up this much: a 16 KiB slice of `yes` takes
~0.3 ms, and a sleep that short lasts a millisecond or more (the loop's timer), so resting
after every slice gave floods ~a quarter of the loop, not half (5-10 MB/s for all floods
while typing, against 10-16 taken in quanta; bench/keys.py, docs/performance.md)."""


class ReadTurns:
    """A FIFO turn shared by one engine's PTY readers (created inside its event loop)."""

    def __init__(self) -> None:
        self._held = False
        self._waiting: deque[anyio.Event] = deque()
        self.waits = 0  # turns that had to queue behind another reader (statistics)
        self.focused = 0  # terminals focused in an operator room
        self.typed_until = -math.inf  # monotonic: some terminal was typed into until then
        self._owed = 0.0  # s of rest the floods' slices have run up, not yet taken

    def contended(self) -> bool:
        """Is anyone interactive, so that floods must leave room between their reads?"""
        return self.focused > 0 or self.typing()

    def typing(self) -> bool:
        """Was some terminal typed into in the last second, so that floods also rest?"""
        return time.monotonic() < self.typed_until

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold the turn for one read and its emulation, and for the loop turn after it."""
        if self._held:
            self.waits += 1
            ready = anyio.Event()
            self._waiting.append(ready)
            try:
                await ready.wait()  # handed over: `_held` stays True for us
            except BaseException:
                if ready.is_set():
                    self._pass_on()
                else:
                    self._waiting.remove(ready)
                raise
        self._held = True
        try:
            began = time.monotonic()
            yield
            if self.typing():  # leave the loop (and the CPU) to the typed keys' hops
                self._owed += min((time.monotonic() - began) * FLOOD_REST, MAX_REST)
            if self._owed >= REST_QUANTUM:
                owed, self._owed = self._owed, 0.0
                await anyio.sleep(owed)
            else:
                await checkpoint()  # keep the turn across a loop turn: others go first
        finally:
            self._pass_on()

    def _pass_on(self) -> None:
        if self._waiting:
            self._waiting.popleft().set()
        else:
            self._held = False

    @property
    def queued(self) -> int:
        return len(self._waiting)
