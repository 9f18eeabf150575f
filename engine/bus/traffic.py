"""What the operator sees of the bus's traffic: per-message events while they are affordable,
counts beyond that.

Every routed message, ack, redelivery, expiry, drop, dead letter and refusal is reported: by
an event of its own (`BusMessageRouted`…) while the per-tick budget lasts, and always in the
counts of the next `BusTrafficSampled`, which also says how many went without an event of
their own. A pydantic event costs 3–6 µs here, more than routing the message; and a UI shows
a few thousand rows a second at most, while an unbounded hub subscriber would otherwise
buffer hundreds of thousands of events a second. The budget (`budget` per `tick()`, which
the sweeper calls every 50 ms: 2,000 events/s) is refilled by the tick, so a quiet bus still
reports every message one by one.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from engine.events import BusTrafficSampled

if TYPE_CHECKING:
    from collections.abc import Callable

    from engine.events import Event

KINDS = ("routed", "acked", "redelivered", "expired", "dropped", "dead_lettered", "refused")


class Traffic:
    def __init__(
        self, emit: Callable[[Event], None], budget: int = 100, period: float = 0.25
    ) -> None:
        self.emit = emit
        self.budget = budget
        self.left = budget
        """Per-message events still allowed before the next tick; the bus reads it inline."""
        self.period = period
        self.counts = dict.fromkeys(KINDS, 0)
        self.unreported = dict.fromkeys(KINDS, 0)
        self.unreported_routed = 0
        """Routed messages past the budget; bumped inline by the bus (its hottest path)."""
        self._since = time.monotonic()
        self._routed_seen = 0
        self._topic_seen: dict[str, int] = {}

    def spend(self, kind: str) -> bool:
        """Count one `kind`; True when it may have its own event (then emit it)."""
        self.counts[kind] += 1
        if self.left > 0:
            self.left -= 1
            return True
        self.unreported[kind] += 1
        return False

    def tick(self, routed: int, topics: dict[str, list[int]]) -> None:
        """Refill the budget; every `period`, emit a sample if anything happened.

        `routed` is the bus's running count of routed messages (counted there, not here, to
        keep the routing path short); `topics` its per-topic [messages, deliveries] totals.
        """
        self.left = self.budget
        now = time.monotonic()
        if now - self._since < self.period:
            return
        counts = {**self.counts, "routed": routed - self._routed_seen}
        self._routed_seen = routed
        self.unreported["routed"] = self.unreported_routed
        if any(counts.values()):
            self.emit(
                BusTrafficSampled(
                    interval=now - self._since,
                    **counts,
                    unreported={k: v for k, v in self.unreported.items() if v},
                    topics=self._busiest(topics),
                )
            )
        self._since = now
        self.counts = dict.fromkeys(KINDS, 0)
        self.unreported = dict.fromkeys(KINDS, 0)
        self.unreported_routed = 0

    def _busiest(self, topics: dict[str, list[int]], top: int = 20) -> dict[str, int]:
        """Messages per topic since the previous sample, the `top` busiest."""
        delta = {}
        for topic, (messages, _) in topics.items():
            seen = self._topic_seen.get(topic, 0)
            if messages != seen:
                delta[topic] = messages - seen
                self._topic_seen[topic] = messages
        return dict(sorted(delta.items(), key=lambda kv: -kv[1])[:top])
