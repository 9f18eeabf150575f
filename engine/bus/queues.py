"""Mailboxes: bounded, ordered holding places for messages waiting for a consumer.

Every destination is a mailbox: a session's inbox (`inbox:NAME`, priority order), a
subscription (`sub:SESSION:PATTERN`, fifo) and a work queue (`queue:NAME`, declared order).
One binary heap serves every order by choosing the sort key, so a redelivered message goes
back to the place its key gives it (the front, for the oldest message of a fifo).

Overflow: a mailbox at capacity evicts its oldest best-effort message for any newcomer
(counted as a drop); when only reliable messages fill it, a best-effort newcomer is dropped
and a reliable one is refused with QueueFullError (by `Reliability.admit`, before it is
journalled): reliable messages are never lost silently.
"""

from __future__ import annotations

import heapq
import itertools
import time
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

import msgspec

if TYPE_CHECKING:
    from collections.abc import Callable

    from engine.bus.message import Message
    from engine.bus.stealing import ShardedQueue


class Order(StrEnum):
    FIFO = "fifo"
    LIFO = "lifo"
    PRIORITY = "priority"
    DELAY = "delay"


_seq = itertools.count()


class Entry(msgspec.Struct, eq=False, gc=False):
    """A message in one mailbox; `attempt` counts deliveries so far.

    `seq` and `enqueued` are set when the entry is first queued: an entry handed straight to
    a waiting consumer never needs them (and a best-effort one may be shared by every
    mailbox its message reached, see `MessageBus.route`). Untracked by the collector, like
    `Message`: it holds only its message.
    """

    message: Message
    attempt: int = 0
    seq: int = -1
    enqueued: float = 0.0


class Consumer(Protocol):
    """Whoever takes messages from a mailbox; `credit` is how many more it can hold.

    With `ack_window` the bus gives back one credit per settled reliable delivery (ack,
    nack, ack timeout); best-effort credit is the consumer's to return (`MessageBus.release`).
    """

    session: str
    credit: int
    ack_window: bool

    def deliver(self, entry: Entry) -> None: ...


class Mailbox:
    def __init__(
        self,
        name: str,
        order: Order = Order.FIFO,
        capacity: int = 1000,
        ack_timeout: float = 30.0,
        max_attempts: int = 5,
    ) -> None:
        self.name = name
        self.kind = name.split(":", 1)[0]
        self.order = order
        self.capacity = capacity
        self.ack_timeout = ack_timeout
        self.max_attempts = max_attempts
        self.consumers: dict[Consumer, None] = {}
        """In round-robin order (an ordered set: adding and removing one is O(1), so 200k
        waiters leaving at once cost milliseconds, not minutes). Change it only through
        `add_consumer` / `remove_consumer` (they keep `sole`)."""
        self.sole: Consumer | None = None
        """The one consumer, when there is exactly one: the bus's fan-out fast path."""
        self.heap: list[tuple[float, int, int, Entry]] = []
        """The waiting entries as heap items; read-only outside this class."""
        self.reliable = 0
        self.in_flight = 0
        self.enqueued = self.delivered = self.acked = self.dropped = 0
        self.passed = 0
        """Handed over on arrival, never queued: counted once here, not in `enqueued` and
        `delivered` (statistics add it to both)."""
        self.redelivered = self.expired = self.dead_lettered = 0
        self.sharded: ShardedQueue | None = None
        """The per-replica queue this mailbox is a shard of (engine/bus/stealing.py)."""

    def __len__(self) -> int:
        return len(self.heap)

    def _key(self, entry: Entry) -> tuple[float, int, int, Entry]:
        m = entry.message
        if self.order is Order.FIFO:
            return (0.0, 0, entry.seq, entry)
        if self.order is Order.LIFO:
            return (0.0, 0, -entry.seq, entry)
        if self.order is Order.PRIORITY:
            return (0.0, m.priority, entry.seq, entry)
        return (m.not_before, m.priority, entry.seq, entry)

    def push(self, entry: Entry) -> Entry | None:
        """Add `entry`; returns the best-effort entry dropped to make room, if any (the
        caller counts and reports it: `Reliability.drop`).

        When only reliable messages wait, the newcomer is the one dropped: it is best-effort,
        since `Reliability.admit` refuses a reliable message a mailbox has no room for."""
        dropped = None
        if len(self.heap) >= self.capacity:
            dropped = self._evict_best_effort()
            if dropped is None:
                return entry
        self.requeue(entry)
        self.enqueued += 1
        return dropped

    def requeue(self, entry: Entry) -> None:
        """Put back without a capacity check (a redelivery must never be refused)."""
        if entry.seq < 0:
            entry.seq = next(_seq)
            entry.enqueued = time.monotonic()
        heapq.heappush(self.heap, self._key(entry))
        self.reliable += entry.message.reliable

    def _evict_best_effort(self) -> Entry | None:
        if self.order is Order.FIFO and not self.reliable:  # the oldest is on top: O(log n)
            return self.pop()
        candidates = [i for i, item in enumerate(self.heap) if not item[3].message.reliable]
        if not candidates:
            return None
        oldest = min(candidates, key=lambda i: self.heap[i][3].seq)
        entry = self.heap[oldest][3]
        self.heap[oldest] = self.heap[-1]
        self.heap.pop()
        heapq.heapify(self.heap)
        return entry

    def ready(self, now: float) -> bool:
        return bool(self.heap) and self.heap[0][0] <= now

    def pop(self) -> Entry:
        entry = heapq.heappop(self.heap)[3]
        self.reliable -= entry.message.reliable
        return entry

    def next_due(self) -> float | None:
        """When the first delayed message becomes deliverable (delay order only)."""
        return self.heap[0][0] if self.heap and self.order is Order.DELAY else None

    def purge(self, doomed: Callable[[Entry], bool]) -> list[Entry]:
        """Remove and return every entry for which `doomed` is true."""
        gone = [item[3] for item in self.heap if doomed(item[3])]
        if gone:
            self.heap = [item for item in self.heap if not doomed(item[3])]
            heapq.heapify(self.heap)
            self.reliable = sum(item[3].message.reliable for item in self.heap)
        return gone

    def add_consumer(self, consumer: Consumer) -> None:
        self.consumers[consumer] = None
        self.sole = consumer if len(self.consumers) == 1 else None

    def remove_consumer(self, consumer: Consumer) -> None:
        if self.consumers.pop(consumer, 0) is None:
            self.sole = next(iter(self.consumers)) if len(self.consumers) == 1 else None

    def next_consumer(self) -> Consumer | None:
        """Round-robin over consumers with credit: the one chosen moves to the back, so
        competing consumers share the load."""
        if (only := self.sole) is not None:
            return only if only.credit > 0 else None
        consumers = self.consumers
        for consumer in consumers:
            if consumer.credit > 0:
                del consumers[consumer]
                consumers[consumer] = None
                return consumer
        return None

    @property
    def idle(self) -> bool:
        """Nothing waiting, nothing in flight, nobody attached: safe to forget."""
        return not self.heap and not self.in_flight and not self.consumers
