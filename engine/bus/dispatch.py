"""Handing messages to consumers: placing them in mailboxes, pumping, credit, waiting.

A consumer (`engine.bus.queues.Consumer`) takes entries only while it has credit, so a slow
one holds at most its window and the rest waits in its mailbox, where the overflow policy
applies: publishers never wait. Competing consumers of one mailbox are served round-robin.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import anyio

from engine.bus.bus_errors import BusTimeoutError
from engine.bus.consumers import LocalSubscription, Waiter
from engine.bus.delivery import InFlight
from engine.bus.queues import Entry
from engine.bus.router import inbox, queue, subscription
from engine.bus.topics import check_pattern, check_topic

if TYPE_CHECKING:
    from engine.bus.broker import MessageBus
    from engine.bus.queues import Consumer, Mailbox


class Dispatcher:
    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus

    def place(self, entry: Entry, box: Mailbox) -> None:
        """Queue `entry` in `box` (or hand it straight over when nothing waits ahead)."""
        bus = self.bus
        if not box.heap and not entry.message.not_before and (c := box.next_consumer()):
            box.enqueued += 1
            self.hand(c, entry, box)
            return
        dropped = box.push(entry)
        if dropped is not None:
            bus.reliability.drop(dropped, box, "overflow")
        if entry.message.not_before:
            bus.delayed.add(box)
        elif dropped is not entry:
            self.pump(box)

    def pump(self, box: Mailbox) -> None:
        """Hand ready entries to consumers with credit, round-robin; what they cannot take
        of a per-replica shard, idle workers of its siblings steal."""
        if not box.heap:
            return
        now = time.time()
        while box.consumers and box.ready(now) and (consumer := box.next_consumer()) is not None:
            entry = box.pop()
            if entry.message.expires_at <= now:
                self.bus.reliability.expire(entry, box)
                continue
            self.hand(consumer, entry, box)
        if box.sharded is not None and box.heap:
            box.sharded.lend(box)

    def hand(self, consumer: Consumer, entry: Entry, box: Mailbox) -> None:
        bus = self.bus
        entry.attempt += 1
        consumer.credit -= 1
        box.delivered += 1
        bus.delivered += 1
        if entry.attempt == 1 and not entry.message.not_before:
            bus.latency.samples.append(time.monotonic() - entry.enqueued if entry.seq >= 0 else 0.0)
        if entry.message.reliable:
            now = time.monotonic()
            flight = InFlight(entry, box, consumer.session, consumer, now + box.ack_timeout, now)
            bus.flights.track(flight)
        elif (sharded := box.sharded) is not None:
            sharded.done(consumer.session, time.monotonic())  # best-effort: taken is done
        consumer.deliver(entry)

    def release(self, box: Mailbox, consumer: Consumer, credit: int = 1) -> None:
        """A consumer passed best-effort messages on: it may take `credit` more."""
        consumer.credit += credit
        self.pump(box)

    def attach(self, box: Mailbox, consumer: Consumer) -> None:
        if box.kind == "sub" and not box.consumers:
            self.bus.listen(box, True)
        box.add_consumer(consumer)
        self.pump(box)
        if box.sharded is not None:
            box.sharded.steal_for(consumer, box)
        elif box.kind == "queue" and (wanted := self.bus.wanted) is not None:
            wanted(box)  # the NATS link pulls for it now (engine.bus.nats_inbound)

    def detach(self, box: Mailbox, consumer: Consumer) -> None:
        """Remove a consumer; a subscription left without one stops receiving."""
        box.remove_consumer(consumer)
        if box.kind == "sub" and not box.consumers:
            self.bus.listen(box, False)
            for entry in box.purge(lambda e: not e.message.reliable):
                self.bus.reliability.drop(entry, box, "unsubscribed")
        self.bus.forget_if_idle(box)

    def subscribe(self, session: str, pattern: str, window: int = 1000) -> LocalSubscription:
        """An in-process subscription (operator, benchmarks); close it to unsubscribe."""
        box = self.bus.mailbox(subscription(session, check_pattern(pattern)))
        sub = LocalSubscription(self.bus, session, box, window)
        self.attach(box, sub)
        return sub

    def consumable(self, session: str, kind: str, name: str) -> Mailbox:
        """The mailbox `session` may take from: its own inbox, or a queue its ACL allows
        (of a per-replica queue, its own shard)."""
        if kind == "inbox":
            return self.bus.mailbox(inbox(self.bus.router.check_session(session)))
        self.bus.acl.check("queue", check_topic(name), session, "consume")
        sharded = self.bus.sharded.get(name)
        if sharded is not None:
            return sharded.shard_of(session)
        return self.bus.mailbox(queue(name))

    async def take(self, session: str, box: Mailbox, timeout: float | None, ack: bool) -> Entry:
        """Wait for one message (pop, recv); BusTimeoutError when none came in time."""
        waiter = Waiter(session, box)
        self.attach(box, waiter)
        try:
            if waiter.entry is None:
                with anyio.move_on_after(math.inf if timeout is None else timeout):
                    await waiter.event.wait()
        except anyio.get_cancelled_exc_class():
            if waiter.entry is not None:  # delivered to a caller that is gone: give it back
                self._give_back(session, waiter.entry, box)
            raise
        finally:
            box.remove_consumer(waiter)
        entry = waiter.entry
        if entry is None:
            raise BusTimeoutError(f"nothing in {box.name} within {timeout:g}s")
        if ack and entry.message.reliable:
            self.bus.reliability.ack(session, entry.message.id)
        return entry

    def _give_back(self, session: str, entry: Entry, box: Mailbox) -> None:
        message = entry.message
        flight = self.bus.flights.take(session, message.id) if message.reliable else None
        if flight is None:  # best-effort entries may be shared between mailboxes: copy
            entry = Entry(message, entry.attempt, entry.seq, entry.enqueued)
        else:
            box = flight.mailbox  # a stolen task goes back to its own shard (and journal row)
        entry.attempt -= 1
        box.requeue(entry)
        if flight is not None:
            box.delivered -= 1
        self.pump(box)
