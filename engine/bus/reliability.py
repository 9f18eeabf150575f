"""At-least-once: admission of reliable messages, acks, redelivery, expiry, drops, dead letters.

A reliable message is journalled as it is admitted (the caller commits before acknowledging
the sender), is in flight to the receiving session until acked, goes back to its mailbox when
the ack timeout passes, and after `max_attempts` becomes a dead letter that can be listed and
replayed. Every outcome is counted and reported through the bus's `Traffic`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import msgspec

from engine.bus.bus_errors import QueueFullError, UnknownTargetError
from engine.bus.delivery import DeadLetter
from engine.bus.message import OPERATOR
from engine.bus.queues import Entry
from engine.events import (
    BusMessageAcked,
    BusMessageDeadLettered,
    BusMessageDropped,
    BusMessageExpired,
    BusMessageRedelivered,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from engine.bus.broker import MessageBus
    from engine.bus.delivery import InFlight
    from engine.bus.message import Message
    from engine.bus.queues import Mailbox


class Reliability:
    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus

    def admit(self, message: Message, boxes: Sequence[Mailbox]) -> None:
        """Refuse a reliable message any mailbox is too full for, else journal it in all."""
        for box in boxes:
            if box.reliable >= box.capacity:
                raise QueueFullError(
                    f"{box.name} is full ({box.capacity} reliable messages waiting)"
                )
        journal = self.bus.journal
        if journal is not None:
            body = message.wire()
            for box in boxes:
                journal.add(box.name, message.id, body)

    def ack(self, session: str, msg_id: str) -> None:
        bus = self.bus
        flight = bus.flights.take(session, msg_id)
        if flight is None:
            raise UnknownTargetError(
                f"{msg_id} is not awaiting an ack from {session!r} (acked already, "
                "redelivered after its ack timeout, best-effort, or never delivered)"
            )
        box = flight.mailbox
        box.acked += 1
        bus.acked += 1
        if box.sharded is not None:
            box.sharded.done(session, flight.since)
        if bus.journal is not None:
            bus.journal.remove(box.name, msg_id)
        if bus.traffic.spend("acked"):
            bus.emit(BusMessageAcked(id=msg_id, session=session, mailbox=box.name))
        self._settled(flight)

    def nack(self, session: str, msg_id: str, requeue: bool = True) -> None:
        """Give a delivery back now (requeue) or send it straight to the dead letters."""
        flight = self.bus.flights.take(session, msg_id)
        if flight is None:
            raise UnknownTargetError(f"{msg_id} is not awaiting an ack from {session!r}")
        if requeue:
            self._redeliver(flight, "nack")
        else:
            self.dead_letter(flight.entry, flight.mailbox, "rejected")
            self._settled(flight)

    def _settled(self, flight: InFlight) -> None:
        box, consumer = flight.mailbox, flight.consumer
        if consumer.ack_window and consumer in box.consumers:
            consumer.credit += 1
            self.bus.dispatch.pump(box)
        self.bus.forget_if_idle(box)

    def _redeliver(self, flight: InFlight, reason: str) -> None:
        bus, entry, box = self.bus, flight.entry, flight.mailbox
        if entry.message.expires_at <= time.time():
            self.expire(entry, box)
        elif entry.attempt >= box.max_attempts:
            self.dead_letter(entry, box, "max-attempts")
        else:
            box.redelivered += 1
            bus.redeliveries += 1
            if bus.journal is not None:
                bus.journal.attempted(box.name, entry.message.id, entry.attempt)
            box.requeue(entry)
            if bus.traffic.spend("redelivered"):
                bus.emit(
                    BusMessageRedelivered(
                        id=entry.message.id,
                        mailbox=box.name,
                        attempt=entry.attempt + 1,
                        reason=reason,
                    )
                )
        self._settled(flight)
        bus.dispatch.pump(box)

    def abandon(self, session: str) -> int:
        """`session`'s process ended: what it took and never acked is owed again now, not
        at its ack timeout (reason `consumer-ended`); returns how many."""
        flights = self.bus.flights.of(session)
        for flight in flights:
            self._redeliver(flight, "consumer-ended")
        return len(flights)

    def expire(self, entry: Entry, box: Mailbox) -> None:
        bus, message = self.bus, entry.message
        box.expired += 1
        bus.expired += 1
        if bus.traffic.spend("expired"):
            bus.emit(BusMessageExpired(id=message.id, mailbox=box.name, reliable=message.reliable))
        if message.reliable:
            self.dead_letter(entry, box, "expired")

    def drop(self, entry: Entry, box: Mailbox, reason: str) -> None:
        """Count and report a discarded best-effort message: every drop passes here."""
        box.dropped += 1
        self.bus.drops += 1
        if self.bus.traffic.spend("dropped"):
            self.bus.emit(BusMessageDropped(id=entry.message.id, mailbox=box.name, reason=reason))

    def dead_letter(self, entry: Entry, box: Mailbox, reason: str) -> None:
        bus = self.bus
        box.dead_lettered += 1
        bus.dead_lettered += 1
        if bus.journal is not None:
            bus.journal.kill(box.name, entry.message.id, reason, entry.attempt)
        evicted = bus.dead.add(DeadLetter(entry.message, box.name, reason, entry.attempt))
        if evicted is not None:
            if bus.journal is not None:
                bus.journal.remove(evicted.mailbox, evicted.message.id)
            source = bus.mailbox(evicted.mailbox)  # where the evicted letter was owed
            self.drop(Entry(evicted.message), source, "dlq-full")
            bus.forget_if_idle(source)
        if bus.traffic.spend("dead_lettered"):
            bus.emit(
                BusMessageDeadLettered(
                    id=entry.message.id, mailbox=box.name, reason=reason, attempts=entry.attempt
                )
            )

    def replay(self, ids: Iterable[str] | None = None, session: str = OPERATOR) -> int:
        """Put dead letters back in their mailboxes with fresh attempts (expired ones lose
        their ttl: someone asked for them); returns how many. A session replays only the
        letters it may see (`MessageBus.may_see`)."""
        bus = self.bus
        visible = None if session == OPERATOR else (lambda d: bus.may_see(session, d))
        letters = bus.dead.take(set(ids) if ids is not None else None, visible)
        for letter in letters:
            message = letter.message
            if letter.reason == "expired":
                message = msgspec.structs.replace(message, ttl=None, _wire=None)
            box = bus.mailbox(letter.mailbox)
            if bus.journal is not None:
                bus.journal.revive(box.name, message.id, message.wire())
            box.requeue(Entry(message))
            box.enqueued += 1
            if bus.traffic.spend("redelivered"):
                bus.emit(
                    BusMessageRedelivered(
                        id=message.id, mailbox=box.name, attempt=1, reason="replay"
                    )
                )
            bus.dispatch.pump(box)
        return len(letters)

    def sweep(self, ttl: bool = True) -> None:
        """Redeliver overdue deliveries, release due delayed messages, expire by ttl."""
        bus = self.bus
        for flight in bus.flights.overdue(time.monotonic()):
            self._redeliver(flight, "ack-timeout")
        now = time.time()
        for box in list(bus.delayed):
            if box.next_due() is None:
                bus.delayed.discard(box)
            elif box.ready(now):
                bus.dispatch.pump(box)
        if ttl:
            for box in list(bus.mailboxes.values()):
                for entry in box.purge(lambda e: e.message.expires_at <= now):
                    self.expire(entry, box)
                bus.forget_if_idle(box)
