"""The bus's `statistics()`: frozen records, plus the cheap meters behind them.

Counters are plain integers bumped on the hot path; rates are computed only when
statistics are read (difference since the previous read), and delivery latency keeps a
bounded window of recent samples, so measuring costs nothing when nobody looks.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.bus.stealing import QueueBalance  # noqa: TC001 (msgspec.convert needs it)
from engine.metrics import percentile

if TYPE_CHECKING:
    from collections.abc import Callable

    from engine.bus.broker import MessageBus
    from engine.bus.queues import Mailbox


@dataclass(frozen=True, slots=True)
class MailboxStatistics:
    """One inbox, subscription or queue."""

    name: str
    kind: str
    order: str
    depth: int
    capacity: int
    in_flight: int
    consumers: int
    enqueued: int
    delivered: int
    acked: int
    drops: int
    redeliveries: int
    expired: int
    dead_lettered: int
    enqueue_rate: float
    deliver_rate: float


@dataclass(frozen=True, slots=True)
class TopicStatistics:
    topic: str
    published: int
    deliveries: int
    rate: float


@dataclass(frozen=True, slots=True)
class BusStatistics:
    connections: int
    published: int
    delivered: int
    acked: int
    drops: int
    redeliveries: int
    expired: int
    dead_lettered: int
    refused: int
    in_flight: int
    dlq_size: int
    publish_rate: float
    deliver_rate: float
    latency_p50: float
    latency_p99: float
    topics: tuple[TopicStatistics, ...]
    mailboxes: tuple[MailboxStatistics, ...]
    balance: tuple[QueueBalance, ...] = ()
    """Per-replica work queues: tasks per worker and steals (engine/bus/stealing.py)."""


class Rates:
    """Per-key rates: counts since the previous reading over the time since then."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, int, float]] = {}

    def rate(self, key: str, total: int, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        then, count, last_rate = self._last.get(key, (now, total, 0.0))
        if now - then < 0.5:
            if key not in self._last:
                self._last[key] = (now, total, 0.0)
            return last_rate
        value = (total - count) / (now - then)
        self._last[key] = (now, total, value)
        return value


class Latencies:
    """The most recent delivery latencies (seconds) and their percentiles."""

    def __init__(self, window: int = 4096) -> None:
        self.samples: deque[float] = deque(maxlen=window)

    def percentile(self, q: float) -> float:
        return percentile(self.samples, q)


def snapshot(bus: MessageBus) -> BusStatistics:
    """The bus's statistics now (rates since the previous snapshot)."""
    now = time.monotonic()
    rate = bus.rates.rate
    boxes = tuple(
        _mailbox(b, rate, now) for b in sorted(bus.mailboxes.values(), key=lambda b: b.name)
    )
    busiest = sorted(bus.topics.items(), key=lambda kv: -kv[1][0])[:100]
    topics = tuple(
        TopicStatistics(t, c[0], c[1], rate(f"topic:{t}", c[0], now)) for t, c in busiest
    )
    return BusStatistics(
        bus.connections, bus.published, bus.delivered, bus.acked, bus.drops,
        bus.redeliveries, bus.expired, bus.dead_lettered, bus.refusals,
        bus.flights.count, len(bus.dead), rate("published", bus.published, now),
        rate("delivered", bus.delivered, now), bus.latency.percentile(0.5),
        bus.latency.percentile(0.99), topics, boxes,
        tuple(q.balance() for q in bus.sharded.values()),
    )  # fmt: skip


def _mailbox(b: Mailbox, rate: Callable[[str, int, float], float], now: float) -> MailboxStatistics:
    return MailboxStatistics(
        b.name, b.kind, str(b.order), len(b), b.capacity, b.in_flight, len(b.consumers),
        b.enqueued + b.passed, b.delivered + b.passed, b.acked, b.dropped, b.redelivered,
        b.expired, b.dead_lettered, rate(f"in:{b.name}", b.enqueued + b.passed, now),
        rate(f"out:{b.name}", b.delivered + b.passed, now),
    )  # fmt: skip
