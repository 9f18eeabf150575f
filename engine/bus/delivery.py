"""Deliveries in flight and dead letters: the bookkeeping behind at-least-once.

A reliable message handed to a consumer is in flight until its session acks it. In-flight
records belong to the *session*, not the connection: `swarmdeck bus queue pop --no-ack`
in one process and `swarmdeck bus ack ID` in another must work. A record whose ack
deadline passes comes back from `overdue()` for the bus to redeliver or dead-letter.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from engine.bus.message import Message
    from engine.bus.queues import Consumer, Entry, Mailbox


@dataclass(slots=True, eq=False)
class InFlight:
    entry: Entry
    mailbox: Mailbox
    session: str
    consumer: Consumer
    deadline: float
    since: float = 0.0  # monotonic time of the delivery
    done: bool = False


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A reliable message that could not be delivered; `reason` says why."""

    message: Message
    mailbox: str
    reason: str
    attempts: int
    at: float = field(default_factory=time.time)


class Deliveries:
    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], list[InFlight]] = {}
        self._deadlines: list[tuple[float, int, InFlight]] = []
        self._seq = itertools.count()
        self.count = 0

    def track(self, flight: InFlight) -> None:
        key = (flight.session, flight.entry.message.id)
        self._by_key.setdefault(key, []).append(flight)
        heapq.heappush(self._deadlines, (flight.deadline, next(self._seq), flight))
        flight.mailbox.in_flight += 1
        self.count += 1

    def _settle(self, flight: InFlight) -> None:
        flight.done = True
        flight.mailbox.in_flight -= 1
        self.count -= 1

    def take(self, session: str, msg_id: str) -> InFlight | None:
        """The oldest open delivery of `msg_id` to `session`, now settled."""
        flights = self._by_key.get((session, msg_id))
        if not flights:
            return None
        flight = flights.pop(0)
        if not flights:
            del self._by_key[(session, msg_id)]
        self._settle(flight)
        return flight

    def overdue(self, now: float) -> list[InFlight]:
        """Settle and return every delivery whose ack deadline has passed."""
        late = []
        while self._deadlines and self._deadlines[0][0] <= now:
            flight = heapq.heappop(self._deadlines)[2]
            if flight.done:
                continue
            key = (flight.session, flight.entry.message.id)
            self._by_key[key].remove(flight)
            if not self._by_key[key]:
                del self._by_key[key]
            self._settle(flight)
            late.append(flight)
        if len(self._deadlines) > 4 * self.count + 1024:  # drop settled records in bulk
            self._deadlines = [d for d in self._deadlines if not d[2].done]
            heapq.heapify(self._deadlines)
        return late

    def of(self, session: str) -> list[InFlight]:
        """Settle and return every open delivery to `session` (a scan: sessions end rarely,
        and an index per session would cost every delivery)."""
        keys = [key for key in self._by_key if key[0] == session]
        found = [flight for key in keys for flight in self._by_key.pop(key)]
        for flight in found:
            self._settle(flight)
        return found


class DeadLetters:
    """The dead-letter queue: bounded, oldest evicted first (the bus counts those as drops)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._letters: OrderedDict[tuple[str, str], DeadLetter] = OrderedDict()

    def add(self, letter: DeadLetter) -> DeadLetter | None:
        self._letters[(letter.mailbox, letter.message.id)] = letter
        if len(self._letters) > self.capacity:
            return self._letters.popitem(last=False)[1]
        return None

    def take(
        self, ids: set[str] | None, visible: Callable[[DeadLetter], bool] | None = None
    ) -> list[DeadLetter]:
        """Remove and return the letters with these message ids (all when None), of those
        `visible` (who asks may see)."""
        chosen = [
            k
            for k, letter in self._letters.items()
            if (ids is None or k[1] in ids) and (visible is None or visible(letter))
        ]
        return [self._letters.pop(k) for k in chosen]

    def list(self, visible: Callable[[DeadLetter], bool] | None = None) -> list[DeadLetter]:
        return [d for d in self._letters.values() if visible is None or visible(d)]

    def __len__(self) -> int:
        return len(self._letters)
