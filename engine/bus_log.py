"""The bus traffic a room missed: the last KEEP per-message bus events and the traffic
counted since the engine started, so a room that attaches (or attaches again) shows the
same bus log and counters as one that watched all along.

The engine records every bus event it emits; a remote engine's mirror (engine/remote)
starts from the server's copy at hello and records the pushes after it. `events()` ends
with one `BusTrafficSampled` holding the totals, which the bus panel adds to its counters
like any sample.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from typing import TYPE_CHECKING

from engine.events import BusTrafficSampled, is_bus_event

if TYPE_CHECKING:
    from engine.events import BusEvent, Event

KEEP = 500
COUNTED = ("routed", "acked", "redelivered", "expired", "dropped", "dead_lettered", "refused")


class BusLog:
    def __init__(self, events: list[BusEvent] | None = None) -> None:
        self._events: deque[BusEvent] = deque(maxlen=KEEP)
        self._totals: Counter[str] = Counter()
        self._since = time.time()
        for event in events or []:
            self.record(event)

    def record(self, event: Event) -> None:
        """Keep a bus event (a hub listener); other events are not the bus's."""
        if isinstance(event, BusTrafficSampled):
            self._since = min(self._since, event.at - event.interval)
            self._totals.update({name: getattr(event, name) for name in COUNTED})
        elif is_bus_event(event):
            self._events.append(event)

    def events(self) -> list[BusEvent]:
        """Oldest first, then the totals so far (if any traffic was counted)."""
        found: list[BusEvent] = list(self._events)
        if self._totals:
            now = time.time()
            counts = {name: self._totals[name] for name in COUNTED}
            total = BusTrafficSampled(
                at=now, interval=now - self._since, unreported={}, topics={}, **counts
            )
            found.append(total)
        return found
