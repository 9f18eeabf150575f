"""`MessageBus`: the one owner of mailboxes, deliveries, the journal and the bus's events.

Every method is synchronous and non-blocking except the waits (`take`, `request`), so a
publisher never waits for a consumer. Methods that journal do not commit: the caller
(`commit()`: the server once per batch of frames, `Engine` per call) commits before it
acknowledges anything, which groups many messages into one SQLite transaction.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections import OrderedDict
from dataclasses import replace
from hmac import compare_digest
from typing import TYPE_CHECKING, Any, NamedTuple

import anyio

from engine.bus.acl import AccessControl, AccessRule
from engine.bus.consumers import LocalSubscription, Waiter
from engine.bus.delivery import DeadLetter, DeadLetters, Deliveries, InFlight
from engine.bus.errors import (
    AuthError,
    BadFrameError,
    BusError,
    BusTimeoutError,
    NoRespondersError,
    QueueFullError,
    UnknownTargetError,
)
from engine.bus.frames import MAX_PAYLOAD
from engine.bus.message import OPERATOR, Message, Priority, new_id, payload_size
from engine.bus.queues import Entry, Mailbox, Order
from engine.bus.router import Router, inbox, queue, subscription
from engine.bus.stats import BusStatistics, Latencies, MailboxStatistics, Rates, TopicStatistics
from engine.bus.topics import check_pattern, check_topic
from engine.events import (
    BusMessageAcked,
    BusMessageDeadLettered,
    BusMessageDropped,
    BusMessageExpired,
    BusMessageRedelivered,
    BusMessageRouted,
    BusRequestRefused,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from pathlib import Path

    from engine.bus.journal import Journal
    from engine.bus.queues import Consumer
    from engine.events import Event


class Receipt(NamedTuple):
    """What a sender learns: the message id and how many mailboxes it reached."""

    id: str
    mailboxes: int


class _Reply:
    def __init__(self) -> None:
        self.event = anyio.Event()
        self.message: Message | None = None


class MessageBus:
    def __init__(
        self,
        sessions: Iterable[str],
        emit: Callable[[Event], None],
        journal: Journal | None = None,
        *,
        capacity: int = 1000,
        queue_capacity: int = 10_000,
        ack_timeout: float = 30.0,
        max_attempts: int = 5,
    ) -> None:
        self.router = Router(sessions)
        self.acl = AccessControl()
        self.mailboxes: dict[str, Mailbox] = {}
        self.flights = Deliveries()
        self.dead = DeadLetters()
        self.journal = journal
        self._emit = emit
        self._defaults = (capacity, queue_capacity, ack_timeout, max_attempts)
        self._tokens: dict[str, str] = {}
        self._replyable: OrderedDict[str, Message] = OrderedDict()
        self._waiting: dict[str, _Reply] = {}
        self._delayed: set[Mailbox] = set()
        self._topics: dict[str, list[int]] = {}
        self.latency = Latencies()
        self._rates = Rates()
        self.connections = 0
        self.socket_path: Path | None = None
        self.published = self.delivered = self.acked = self.drops = 0
        self.redeliveries = self.expired = self.dead_lettered = self.refusals = 0
        if journal is not None:
            self._recover(journal)

    # -- identity ---------------------------------------------------------------------------
    def token_for(self, session: str) -> str:
        """The secret a session presents in `hello`; made once per engine run. The engine asks
        for every job it starts, so sessions made at run time (replicas, forks) join too."""
        self.router.add_session(session)
        return self._tokens.setdefault(session, secrets.token_urlsafe(24))

    def authenticate(self, session: str, token: str) -> str:
        expected = self._tokens.get(session, "")
        if not expected or not compare_digest(expected.encode(), token.encode()):
            raise AuthError(f"bad token for session {session!r}")
        return session

    def refused(self, session: str | None, op: str, error: BusError) -> None:
        self.refusals += 1
        self._emit(
            BusRequestRefused(session=session, op=op, code=error.code, reason=str(error)[:300])
        )

    # -- mailboxes --------------------------------------------------------------------------
    def mailbox(self, name: str) -> Mailbox:
        box = self.mailboxes.get(name)
        if box is None:
            capacity, queue_capacity, ack_timeout, attempts = self._defaults
            kind = name.split(":", 1)[0]
            order = Order.PRIORITY if kind == "inbox" else Order.FIFO
            size = queue_capacity if kind == "queue" else capacity
            box = self.mailboxes[name] = Mailbox(name, order, size, ack_timeout, attempts)
        return box

    def _forget_if_idle(self, box: Mailbox) -> None:
        if box.kind == "sub" and box.idle:
            self.mailboxes.pop(box.name, None)

    def declare(self, session: str, kind: str, name: str, **config: Any) -> None:
        """Create or reconfigure a queue or group: ACL, and for queues order/limits."""
        check_topic(name)
        if kind not in ("queue", "group"):
            raise BadFrameError(f"declare a queue or a group, not {kind!r}")
        current = self.acl.rule(kind, name)
        rule = AccessRule(
            tuple(config.get("publishers") or current.publishers),
            tuple(config.get("consumers") or current.consumers),
            current.owner if self.acl.declared(kind, name) else session,
        )
        self.acl.set(kind, name, rule, by=session)
        if kind == "queue":
            self._configure(self.mailbox(queue(name)), config)
        if self.journal is not None:
            saved = {k: v for k, v in config.items() if v is not None}
            saved.update(publishers=rule.publishers, consumers=rule.consumers, owner=rule.owner)
            self.journal.declare(kind, name, json.dumps(saved))

    def _configure(self, box: Mailbox, config: dict[str, Any]) -> None:
        order = config.get("order")
        if order is not None and Order(order) is not box.order:
            if len(box) or box.in_flight:
                raise BadFrameError(f"{box.name} is not empty; its order stays {box.order}")
            box.order = Order(order)
        box.capacity = config.get("capacity") or box.capacity
        box.ack_timeout = config.get("ack_timeout") or box.ack_timeout
        box.max_attempts = config.get("max_attempts") or box.max_attempts

    # -- sending ----------------------------------------------------------------------------
    def send(
        self,
        route: str,
        target: str,
        sender: str,
        payload: Any,
        *,
        reliable: bool = False,
        priority: Priority = Priority.NORMAL,
        ttl: float | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        delay: float = 0.0,
        sized: bool = False,
    ) -> Receipt:
        """Route one message (`sized`: the caller knows the payload is under the limit)."""
        if route in ("topic", "request"):
            check_topic(target)
        if route == "queue":
            self.acl.check("queue", target, sender, "publish")
        elif route == "group":
            self.acl.check("group", target, sender, "publish")
        names = self.router.resolve(route, target, sender)
        now = time.time()
        message = Message(
            new_id(), route, target, sender, payload, (), priority, reliable, ttl,
            correlation_id, reply_to, now, now + delay if delay else 0.0,
        )  # fmt: skip
        if delay and route == "queue" and self.mailbox(names[0]).order is not Order.DELAY:
            raise BadFrameError(f"queue {target!r} is not a delay queue; declare it order=delay")
        if not sized:
            self._check_size(message)
        return Receipt(message.id, self.route(message, names))

    def _check_size(self, message: Message) -> None:
        try:
            wire = message.wire()
        except (TypeError, ValueError) as exc:
            raise BadFrameError(f"payload is not JSON: {exc}") from None
        if len(wire) > MAX_PAYLOAD:
            payload_size(message.payload)

    def route(self, message: Message, names: list[str]) -> int:
        """Place `message` in every named mailbox: all or nothing for a reliable one."""
        boxes = [self.mailbox(n) for n in names]
        if message.reliable:
            for box in boxes:
                if box.reliable >= box.capacity:
                    raise QueueFullError(
                        f"{box.name} is full ({box.capacity} reliable messages waiting)"
                    )
            if self.journal is not None:
                body = message.wire()
                for box in boxes:
                    self.journal.add(box.name, message.id, body)
        if message.reply_to is not None:
            self._replyable[message.id] = message
            if len(self._replyable) > 10_000:
                self._replyable.popitem(last=False)
        for box in boxes:
            entry = Entry(message)
            if not len(box) and not message.not_before and (c := box.next_consumer()):
                box.enqueued += 1  # nothing queued ahead and a consumer ready: hand it over
                self._hand(c, entry, box)
                continue
            dropped = box.push(entry)
            if dropped is not None:
                self._drop(dropped, box, "overflow")
            if message.not_before:
                self._delayed.add(box)
            elif dropped is not entry:
                self.pump(box)
        self._count(message, len(boxes))
        return len(boxes)

    def _count(self, message: Message, mailboxes: int) -> None:
        self.published += 1
        counts = self._topics.get(message.target) if message.route == "topic" else None
        if counts is None and message.route == "topic" and len(self._topics) < 1000:
            counts = self._topics[message.target] = [0, 0]
        if counts is not None:
            counts[0] += 1
            counts[1] += mailboxes
        self._emit(
            BusMessageRouted(
                id=message.id,
                route=message.route,
                target=message.target,
                sender=message.sender,
                reliable=message.reliable,
                priority=message.priority.name.lower(),
                mailboxes=mailboxes,
            )
        )

    # -- delivering -------------------------------------------------------------------------
    def pump(self, box: Mailbox) -> None:
        """Hand ready entries to consumers with credit, round-robin."""
        if not box.consumers or not len(box):
            return
        now = time.time()
        while box.ready(now) and (consumer := box.next_consumer()) is not None:
            entry = box.pop()
            if entry.message.expires_at <= now:
                self._expire(entry, box)
                continue
            self._hand(consumer, entry, box)

    def _hand(self, consumer: Consumer, entry: Entry, box: Mailbox) -> None:
        entry.attempt += 1
        consumer.credit -= 1
        box.delivered += 1
        self.delivered += 1
        if entry.attempt == 1 and not entry.message.not_before:
            self.latency.samples.append(time.monotonic() - entry.enqueued)
        if entry.message.reliable:
            deadline = time.monotonic() + box.ack_timeout
            self.flights.track(InFlight(entry, box, consumer.session, consumer, deadline))
        consumer.deliver(entry, box)

    def release(self, box: Mailbox, consumer: Consumer, credit: int = 1) -> None:
        """A consumer passed best-effort messages on: it may take `credit` more."""
        consumer.credit += credit
        self.pump(box)

    def attach(self, box: Mailbox, consumer: Consumer) -> None:
        if box.kind == "sub" and not box.consumers:
            self.router.topics.add(box.name.split(":", 2)[2], box.name)
        box.consumers.append(consumer)
        self.pump(box)

    def detach(self, box: Mailbox, consumer: Consumer) -> None:
        """Remove a consumer; a subscription left without one stops receiving."""
        if consumer in box.consumers:
            box.consumers.remove(consumer)
        if box.kind == "sub" and not box.consumers:
            self.router.topics.remove(box.name.split(":", 2)[2], box.name)
            for entry in box.purge(lambda e: not e.message.reliable):
                self._drop(entry, box, "unsubscribed")
        self._forget_if_idle(box)

    def join(self, session: str, group: str) -> None:
        self.acl.check("group", check_topic(group), session, "consume")
        self.router.join(group, session)

    def leave(self, session: str, group: str) -> None:
        self.router.leave(group, session)

    def subscribe(self, session: str, pattern: str, window: int = 1000) -> LocalSubscription:
        """An in-process subscription (operator, benchmarks); close it to unsubscribe."""
        box = self.mailbox(subscription(session, check_pattern(pattern)))
        sub = LocalSubscription(self, session, box, window)
        self.attach(box, sub)
        return sub

    def consumable(self, session: str, kind: str, name: str) -> Mailbox:
        """The mailbox `session` may take from: its own inbox, or a queue its ACL allows."""
        if kind == "inbox":
            return self.mailbox(inbox(self.router.check_session(session)))
        self.acl.check("queue", check_topic(name), session, "consume")
        return self.mailbox(queue(name))

    async def take(self, session: str, box: Mailbox, timeout: float | None, ack: bool) -> Entry:
        """Wait for one message (pop, recv); BusTimeoutError when none came in time."""
        waiter = Waiter(session)
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
            if waiter in box.consumers:
                box.consumers.remove(waiter)
        entry = waiter.entry
        if entry is None:
            raise BusTimeoutError(f"nothing in {box.name} within {timeout:g}s")
        if ack and entry.message.reliable:
            self.ack(session, entry.message.id)
        return entry

    def _give_back(self, session: str, entry: Entry, box: Mailbox) -> None:
        flight = self.flights.take(session, entry.message.id) if entry.message.reliable else None
        entry.attempt -= 1
        box.requeue(entry)
        if flight is not None:
            box.delivered -= 1
        self.pump(box)

    # -- acks, redelivery, expiry, dead letters ---------------------------------------------
    def ack(self, session: str, msg_id: str) -> None:
        flight = self.flights.take(session, msg_id)
        if flight is None:
            raise UnknownTargetError(
                f"{msg_id} is not awaiting an ack from {session!r} (acked already, "
                "redelivered after its ack timeout, best-effort, or never delivered)"
            )
        box = flight.mailbox
        box.acked += 1
        self.acked += 1
        if self.journal is not None:
            self.journal.remove(box.name, msg_id)
        self._emit(BusMessageAcked(id=msg_id, session=session, mailbox=box.name))
        self._settled(flight)

    def nack(self, session: str, msg_id: str, requeue: bool = True) -> None:
        """Give a delivery back now (requeue) or send it straight to the dead letters."""
        flight = self.flights.take(session, msg_id)
        if flight is None:
            raise UnknownTargetError(f"{msg_id} is not awaiting an ack from {session!r}")
        if requeue:
            self._redeliver(flight, "nack")
        else:
            self._dead_letter(flight.entry, flight.mailbox, "rejected")
            self._settled(flight)

    def _settled(self, flight: InFlight) -> None:
        box, consumer = flight.mailbox, flight.consumer
        if consumer is not None and consumer.ack_window and consumer in box.consumers:
            consumer.credit += 1
            self.pump(box)
        self._forget_if_idle(box)

    def _redeliver(self, flight: InFlight, reason: str) -> None:
        entry, box = flight.entry, flight.mailbox
        if entry.message.expires_at <= time.time():
            self._expire(entry, box)
        elif entry.attempt >= box.max_attempts:
            self._dead_letter(entry, box, "max-attempts")
        else:
            box.redelivered += 1
            self.redeliveries += 1
            if self.journal is not None:
                self.journal.attempted(box.name, entry.message.id, entry.attempt)
            box.requeue(entry)
            self._emit(
                BusMessageRedelivered(
                    id=entry.message.id, mailbox=box.name, attempt=entry.attempt + 1, reason=reason
                )
            )
        self._settled(flight)
        self.pump(box)

    def _expire(self, entry: Entry, box: Mailbox) -> None:
        box.expired += 1
        self.expired += 1
        self._emit(
            BusMessageExpired(
                id=entry.message.id, mailbox=box.name, reliable=entry.message.reliable
            )
        )
        if entry.message.reliable:
            self._dead_letter(entry, box, "expired")

    def _drop(self, entry: Entry, box: Mailbox, reason: str) -> None:
        self.drops += 1
        self._emit(BusMessageDropped(id=entry.message.id, mailbox=box.name, reason=reason))

    def _dead_letter(self, entry: Entry, box: Mailbox, reason: str) -> None:
        box.dead_lettered += 1
        self.dead_lettered += 1
        if self.journal is not None:
            self.journal.kill(box.name, entry.message.id, reason, entry.attempt)
        evicted = self.dead.add(DeadLetter(entry.message, box.name, reason, entry.attempt))
        if evicted is not None:
            if self.journal is not None:
                self.journal.remove(evicted.mailbox, evicted.message.id)
            self._drop(Entry(evicted.message), box, "dlq-full")
        self._emit(
            BusMessageDeadLettered(
                id=entry.message.id, mailbox=box.name, reason=reason, attempts=entry.attempt
            )
        )

    def dead_letters(self) -> list[DeadLetter]:
        return self.dead.list()

    def replay(self, ids: Iterable[str] | None = None) -> int:
        """Put dead letters back in their mailboxes with fresh attempts (expired ones lose
        their ttl: the operator asked for them); returns how many."""
        letters = self.dead.take(set(ids) if ids is not None else None)
        for letter in letters:
            message = letter.message
            if letter.reason == "expired":
                message = replace(message, ttl=None, _wire=None)
            box = self.mailbox(letter.mailbox)
            if self.journal is not None:
                self.journal.revive(box.name, message.id, message.wire())
            box.requeue(Entry(message))
            box.enqueued += 1
            self._emit(
                BusMessageRedelivered(id=message.id, mailbox=box.name, attempt=1, reason="replay")
            )
            self.pump(box)
        return len(letters)

    # -- request / reply --------------------------------------------------------------------
    async def request(
        self, sender: str, topic: str, payload: Any, timeout: float, **options: Any
    ) -> Message:
        """Publish a request and wait for the first reply (correlated by the request id)."""
        reply = _Reply()
        receipt = self.send("request", topic, sender, payload, reply_to=sender, **options)
        if receipt.mailboxes == 0:
            raise NoRespondersError(f"nobody is subscribed to {topic!r}")
        self._waiting[receipt.id] = reply
        try:
            with anyio.move_on_after(timeout):
                await reply.event.wait()
        finally:
            del self._waiting[receipt.id]
        if reply.message is None:
            raise BusTimeoutError(f"no reply to {receipt.id} on {topic!r} within {timeout:g}s")
        return reply.message

    def reply(self, sender: str, msg_id: str, payload: Any, *, sized: bool = False) -> Receipt:
        """Answer message `msg_id`: straight to a waiting requester, else to its inbox."""
        original = self._replyable.get(msg_id)
        if original is None or original.reply_to is None:
            raise UnknownTargetError(f"no request {msg_id!r} to reply to (unknown or too old)")
        correlation = original.correlation_id or original.id
        message = Message(
            new_id(), "reply", original.reply_to, sender, payload, correlation_id=correlation
        )
        if not sized:
            self._check_size(message)
        waiting = self._waiting.get(correlation)
        if waiting is not None and waiting.message is None:
            waiting.message = message
            waiting.event.set()
            self._count(message, 1)
            return Receipt(message.id, 1)
        message.ttl = 60.0  # nobody waits any more: a late reply, kept a minute in the inbox
        return Receipt(message.id, self.route(message, [inbox(original.reply_to)]))

    # -- upkeep -----------------------------------------------------------------------------
    def sweep(self, ttl: bool = True) -> None:
        """Redeliver overdue deliveries, release due delayed messages, expire by ttl."""
        for flight in self.flights.overdue(time.monotonic()):
            self._redeliver(flight, "ack-timeout")
        now = time.time()
        for box in list(self._delayed):
            if box.next_due() is None:
                self._delayed.discard(box)
            elif box.ready(now):
                self.pump(box)
        if ttl:
            for box in list(self.mailboxes.values()):
                for entry in box.purge(lambda e: e.message.expires_at <= now):
                    self._expire(entry, box)
                self._forget_if_idle(box)
        self.commit()

    async def run(self, interval: float = 0.05) -> None:
        """The sweeper: ack timeouts and delays every `interval`, ttl every ~0.5 s."""
        ticks = 0
        while True:
            await anyio.sleep(interval)
            ticks += 1
            self.sweep(ttl=ticks % max(1, round(0.5 / interval)) == 0)

    def commit(self) -> None:
        if self.journal is not None:
            self.journal.commit()

    def _recover(self, journal: Journal) -> None:
        for kind, name, config in journal.declarations():
            saved = json.loads(config)
            rule = AccessRule(tuple(saved.pop("publishers")), tuple(saved.pop("consumers")))
            self.acl.set(kind, name, replace(rule, owner=saved.pop("owner")), by=OPERATOR)
            if kind == "queue":
                self._configure(self.mailbox(queue(name)), saved)
        for name, body, attempts, dead in journal.rows():
            message = Message.from_dict(json.loads(body))
            if message.reply_to is not None:
                self._replyable[message.id] = message
            if dead is not None:
                self.dead.add(DeadLetter(message, name, dead, attempts))
                continue
            box = self.mailbox(name)
            box.requeue(Entry(message, attempt=attempts))
            box.enqueued += 1
            if message.not_before:
                self._delayed.add(box)

    # -- statistics -------------------------------------------------------------------------
    def statistics(self) -> BusStatistics:
        now = time.monotonic()
        rate = self._rates.rate
        boxes = tuple(
            self._mailbox_statistics(b, now)
            for b in sorted(self.mailboxes.values(), key=lambda b: b.name)
        )
        busiest = sorted(self._topics.items(), key=lambda kv: -kv[1][0])[:100]
        topics = tuple(
            TopicStatistics(t, c[0], c[1], rate(f"topic:{t}", c[0], now)) for t, c in busiest
        )
        return BusStatistics(
            self.connections, self.published, self.delivered, self.acked, self.drops,
            self.redeliveries, self.expired, self.dead_lettered, self.refusals,
            self.flights.count, len(self.dead), rate("published", self.published, now),
            rate("delivered", self.delivered, now), self.latency.percentile(0.5),
            self.latency.percentile(0.99), topics, boxes,
        )  # fmt: skip

    def _mailbox_statistics(self, b: Mailbox, now: float) -> MailboxStatistics:
        rate = self._rates.rate
        return MailboxStatistics(
            b.name, b.kind, str(b.order), len(b), b.capacity, b.in_flight, len(b.consumers),
            b.enqueued, b.delivered, b.acked, b.dropped, b.redelivered, b.expired,
            b.dead_lettered, rate(f"in:{b.name}", b.enqueued, now),
            rate(f"out:{b.name}", b.delivered, now),
        )  # fmt: skip
