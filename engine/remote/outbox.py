"""One client's pending output: facts in order, screens and statistics coalesced.

Facts (replies, state events, bus events) must each arrive, so they queue in order; a
client whose fact backlog passes MAX_FACT_BYTES is dropped with a reason instead of
growing without limit. Screens only need "the latest", so a dirty set per session holds
at most one pending update each (the writer sends a delta from what the client last got),
the interactive session's first (engine.interactive);
statistics are one flag. Nothing here ever waits, so the engine never waits for a client.
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from collections.abc import Callable

MAX_FACT_BYTES = 16 << 20
MAX_BATCH = 256 << 10


def _never(session: str) -> bool:
    return False


class Outbox:
    def __init__(
        self,
        max_fact_bytes: int = MAX_FACT_BYTES,
        interactive: Callable[[str], bool] = _never,
    ) -> None:
        self._interactive = interactive
        self._facts: deque[bytes] = deque()
        self._fact_bytes = 0
        self._max = max_fact_bytes
        self._screens: dict[str, None] = {}
        self._sent_at: dict[str, int] = {}  # when each session's screen last went out
        self._clock = itertools.count(1)
        self._stats = False
        self._wakeup = anyio.Event()
        self.overflow: str | None = None

    @property
    def backlog(self) -> int:
        """Bytes of facts waiting for the socket."""
        return self._fact_bytes

    def add_fact(self, frame: bytes) -> None:
        if self.overflow:
            return
        self._facts.append(frame)
        self._fact_bytes += len(frame)
        if self._fact_bytes > self._max:
            self.overflow = f"backlog of {self._fact_bytes} bytes of events (limit {self._max})"
        self._wakeup.set()

    def mark_screen(self, session: str) -> None:
        self._screens[session] = None
        self._wakeup.set()

    def mark_stats(self) -> None:
        self._stats = True
        self._wakeup.set()

    async def wait(self) -> None:
        if not (self._facts or self._screens or self._stats or self.overflow):
            self._wakeup = anyio.Event()
            await self._wakeup.wait()

    def take_facts(self) -> bytes:
        """Queued facts joined, at most ~MAX_BATCH bytes (one socket write)."""
        batch: list[bytes] = []
        size = 0
        while self._facts and size < MAX_BATCH:
            frame = self._facts.popleft()
            batch.append(frame)
            size += len(frame)
        self._fact_bytes -= size
        return b"".join(batch)

    def take_stats(self) -> bool:
        stats, self._stats = self._stats, False
        return stats

    def take_screen(self) -> str | None:
        """The interactive dirty session (engine.interactive: focused, or typed into),
        else the one sent longest ago, or None: a key's echo goes out before the next
        frame of a flood, not after a whole round of them."""
        if not self._screens:
            return None
        name = next((s for s in self._screens if self._interactive(s)), None)
        if name is None:
            name = min(self._screens, key=lambda session: self._sent_at.get(session, 0))
        del self._screens[name]
        self._sent_at[name] = next(self._clock)
        return name
