"""`MessageBus`: the owner of the bus's state, its routing, and the one facade callers use.

Every method is synchronous and non-blocking except the waits (`take`, `request`), so a
publisher never waits for a consumer. Methods that journal do not commit: the caller
(`commit()`: the server once per batch of frames, `Engine` per call) commits before it
acknowledges anything, which groups many messages into one SQLite transaction.

The work is split by job, each collaborator sharing this object's state:
`Dispatcher` (engine.bus.dispatch) hands messages to consumers, `Reliability`
(engine.bus.reliability) owns acks, redelivery, expiry and dead letters, `Requests`
(engine.bus.requests) request/reply, engine.bus.recovery declarations and restarts,
`Traffic` (engine.bus.traffic) the operator's events.

Size: the one facade over the bus's state; each method hands over to its helper module.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import sqlite3
import time
from typing import TYPE_CHECKING, Any

import anyio

from engine.acceptor import Gate
from engine.bus.acl import RESERVED, AccessControl, check_reserved
from engine.bus.bus_errors import BadFrameError, BusError, JournalError
from engine.bus.delivery import DeadLetters, Deliveries
from engine.bus.dispatch import Dispatcher
from engine.bus.limits import BusLimits
from engine.bus.message import OPERATOR, Message, new_id
from engine.bus.message import Receipt as Receipt  # re-exported: callers know it from here
from engine.bus.queues import Entry, Mailbox, Order
from engine.bus.recovery import declare, recover
from engine.bus.reliability import Reliability
from engine.bus.requests import Requests
from engine.bus.router import Router, check_elsewhere, inbox, queue
from engine.bus.stats import Latencies, Rates, snapshot
from engine.bus.stealing import ShardedQueue
from engine.bus.tokens import Tokens
from engine.bus.topics import check_topic
from engine.bus.traffic import Traffic
from engine.deck.priorities import Priority
from engine.events import BusJournalFailed, BusMessageRouted, BusRequestRefused

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from pathlib import Path

    from engine.bus.delivery import DeadLetter
    from engine.bus.journal import Journal
    from engine.bus.stats import BusStatistics
    from engine.events import Event

_FANOUT_CACHE = 10_000
log = logging.getLogger(__name__)


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
        self.sharded: dict[str, ShardedQueue] = {}
        """Per-replica work queues by name (engine/bus/stealing.py)."""
        self.flights = Deliveries()
        self.dead = DeadLetters()
        self.journal = journal
        self.emit = emit
        self.traffic = Traffic(emit)
        self.defaults = (capacity, queue_capacity, ack_timeout, max_attempts)
        self.delayed: set[Mailbox] = set()
        self.topics: dict[str, list[int]] = {}
        self._fanout: dict[str, tuple[tuple[Mailbox, ...], list[int]]] = {}
        self.latency = Latencies()
        self.rates = Rates()
        self.connections = 0
        self.limits = BusLimits()
        """What one connection may hold (engine.bus.limits); replace it to change them."""
        self.gate = Gate(self.limits.connections, self.limits.unauthenticated)
        self.socket_path: Path | None = None
        self.outbox: Mailbox | None = None
        """Set by engine.bus.nats_link: what must reach other engines is placed here too."""
        self.wanted: Callable[[Mailbox], None] | None = None
        """Set by engine.bus.nats_inbound: told when a queue gains a consumer."""
        self.published = self.delivered = self.acked = self.drops = 0
        self.journal_failures = 0
        self._journal_reported = -1e9
        self.redeliveries = self.expired = self.dead_lettered = self.refusals = 0
        self.dispatch = Dispatcher(self)
        self.reliability = Reliability(self)
        self.requests = Requests(self)
        self.tokens = tokens = Tokens(self.router)
        self.token_for, self.authenticate = tokens.token_for, tokens.authenticate
        # the collaborators' public methods, as the bus's own (documented where defined)
        self.pump, self.release = self.dispatch.pump, self.dispatch.release
        self.attach, self.detach = self.dispatch.attach, self.dispatch.detach
        self.subscribe, self.take = self.dispatch.subscribe, self.dispatch.take
        self.consumable = self.dispatch.consumable
        self.ack, self.nack, self.replay = (
            self.reliability.ack,
            self.reliability.nack,
            self.reliability.replay,
        )
        self.abandon = self.reliability.abandon
        self.request, self.reply = self.requests.request, self.requests.reply
        if journal is not None:
            recover(self, journal)

    def refused(self, session: str | None, op: str, error: BusError) -> None:
        self.refusals += 1
        if self.traffic.spend("refused"):
            reason = str(error)[:300]
            self.emit(BusRequestRefused(session=session, op=op, code=error.code, reason=reason))

    # -- mailboxes --------------------------------------------------------------------------
    def mailbox(self, name: str) -> Mailbox:
        box = self.mailboxes.get(name)
        if box is None:
            capacity, queue_capacity, ack_timeout, attempts = self.defaults
            kind = name.split(":", 1)[0]
            order = Order.PRIORITY if kind == "inbox" else Order.FIFO
            size = queue_capacity if kind == "queue" else capacity
            box = self.mailboxes[name] = Mailbox(name, order, size, ack_timeout, attempts)
        return box

    def forget_if_idle(self, box: Mailbox) -> None:
        if box.kind == "sub" and box.idle:
            self.mailboxes.pop(box.name, None)

    def listen(self, box: Mailbox, listening: bool) -> None:
        """A subscription mailbox gained its first consumer (`listening`) or lost its last:
        update the topic index and drop the cached fan-out per topic, now stale."""
        pattern = box.name.split(":", 2)[2]
        topics = self.router.topics
        (topics.add if listening else topics.remove)(pattern, box.name)
        self._fanout.clear()

    def shard(self, name: str, owners: Sequence[str], steal: bool = True) -> ShardedQueue:
        """Make `name` a per-replica work queue: shard `name.i` for the i-th owner. What a
        previous engine's journal declared for `name` (order, limits) applies to each."""
        check_topic(name)
        if name in self.sharded or not owners:
            raise BadFrameError(f"queue {name!r} is sharded already, or has no owners")
        found = self.sharded[name] = ShardedQueue(self, name, owners, steal)
        declared = self.mailboxes.get(queue(name))
        if declared is not None and declared.idle:
            del self.mailboxes[declared.name]
            for box in found.boxes:
                box.order, box.capacity = declared.order, declared.capacity
                box.ack_timeout, box.max_attempts = declared.ack_timeout, declared.max_attempts
        return found

    def declare(self, session: str, kind: str, name: str, **config: Any) -> None:
        """Create or reconfigure a queue or group: ACL, and for queues order/limits."""
        declare(self, session, kind, name, config)

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
        counts = None
        receivers: tuple[str, ...] = ()  # topics and queues: not known until delivery
        if route == "topic" or route == "request":
            check_reserved(target, sender)
            boxes, counts = self._fanout.get(target) or self._resolve_topic(target)
            if self.outbox is not None and not target.startswith(RESERVED):  # engine's own
                boxes = (*boxes, self.outbox)
        elif route == "queue":
            self.acl.check(route, target, sender, "publish")
            sharded = self.sharded.get(target)
            if sharded is not None:  # per-replica shards: this engine's replicas, local
                boxes = (sharded.next_box(),)
            else:
                box = self.mailbox(queue(check_topic(target)))
                local = box.order is Order.DELAY or box.sharded is not None  # a shard by name
                boxes = (box if local or self.outbox is None else self.outbox,)  # NATS: shared
        elif self.outbox is not None and route == "direct" and not self.router.known(target):
            receivers, boxes = (check_elsewhere(target),), (self.outbox,)  # another engine's
        else:
            if route == "group":
                self.acl.check(route, target, sender, "publish")
            receivers = tuple(self.router.receivers(route, target, sender))
            boxes = tuple(self.mailbox(inbox(s)) for s in receivers)
            if self.outbox is not None and route == "broadcast":
                boxes = (*boxes, self.outbox)
        now = time.time()
        message = Message(
            new_id(), route, target, sender, payload, receivers, priority, reliable, ttl,
            correlation_id, reply_to, now, now + delay if delay else 0.0,
        )  # fmt: skip
        if delay and route == "queue" and boxes[0].order is not Order.DELAY:
            raise BadFrameError(f"queue {target!r} is not a delay queue; declare it order=delay")
        if not sized:
            message.check_size()
        reached = self.route(message, boxes)
        if counts is not None and route == "topic":
            counts[0] += 1
            counts[1] += reached - (self.outbox is not None)  # deliveries: not the outbox
        return Receipt(message.id, reached)

    def ingest(self, message: Message, attempts: int = 0) -> int:
        """Route a message another engine sent (engine.bus.nats_inbound) to this engine's
        mailboxes only, keeping its id, sender and timestamp (so its ttl runs from when it
        was sent); one past its ttl is expired here (a reliable one is a dead letter).
        `attempts`: deliveries a queue message already had on the engine that returned it."""
        route, target, sender = message.route, message.target, message.sender
        if route != "queue" and sender != OPERATOR and self.router.known(sender):
            return 0  # forged: no other engine speaks for a session of this one (queue
            # messages come back through the shared stream, this engine's own too)
        if route == "reply":
            return self.requests.arrived(message)
        if route == "topic" or route == "request":
            if target.startswith(RESERVED):
                return 0  # the engine's own topics (swarmdeck.alerts): another engine's are not
            boxes: Sequence[Mailbox] = (self._fanout.get(target) or self._resolve_topic(target))[0]
        elif route == "queue":
            boxes = (self.mailbox(queue(check_topic(target))),)
        elif route == "broadcast":
            sessions = self.router.sessions
            boxes = [self.mailbox(inbox(s)) for s in sessions if s != sender]
        elif route == "direct" and self.router.known(target):
            boxes = (self.mailbox(inbox(target)),)
        else:
            return 0  # a direct message for a session of another engine: not ours
        if message.expires_at <= time.time():
            for box in boxes:
                self.reliability.expire(Entry(message, attempts), box)
            return 0
        if attempts and route == "queue":
            return self._requeued(message, boxes[0], attempts)
        return self.route(message, boxes)

    def _requeued(self, message: Message, box: Mailbox, attempts: int) -> int:
        """A queue message that comes back with `attempts` deliveries behind it."""
        if message.reliable:
            self.reliability.admit(message, (box,))
            if self.journal is not None:
                self.journal.attempted(box.name, message.id, attempts)
        if attempts >= box.max_attempts:  # its last attempt was on the other engine
            if message.reliable:
                self.reliability.dead_letter(Entry(message, attempts), box, "max-attempts")
            return 0
        self.dispatch.place(Entry(message, attempts), box)
        self.count(message, 1)
        return 1

    def _resolve_topic(self, topic: str) -> tuple[tuple[Mailbox, ...], list[int]]:
        """Who listens to `topic`, and its [messages, deliveries] counters; cached."""
        names = self.router.topics.lookup(check_topic(topic))
        counts = self.topics.get(topic)
        if counts is None:  # statistics track the first 1,000 topics
            counts = [0, 0] if len(self.topics) >= 1000 else self.topics.setdefault(topic, [0, 0])
        if len(self._fanout) >= _FANOUT_CACHE:
            self._fanout.clear()
        found = self._fanout[topic] = (tuple(self.mailbox(n) for n in names), counts)
        return found

    def route(self, message: Message, boxes: Sequence[Mailbox]) -> int:
        """Place `message` in every mailbox: all or nothing for a reliable one.

        The hot path: a best-effort message meeting an empty mailbox whose one consumer has
        credit is handed over inline, every such mailbox sharing one `Entry` (attempt 1, never
        queued, never mutated), so fan-out costs a few attribute updates per subscriber.
        """
        if message.reply_to is not None:
            self.requests.remember(message)
        if message.reliable or message.not_before:
            if message.reliable:
                self.reliability.admit(message, boxes)
            for box in boxes:
                self.dispatch.place(Entry(message), box)
        else:
            shared = Entry(message, 1)
            slow = 0
            for box in boxes:
                if (c := box.sole) is not None and c.credit > 0 and not box.heap:
                    c.credit -= 1
                    box.passed += 1
                    c.deliver(shared)
                else:
                    self.dispatch.place(Entry(message), box)
                    slow += 1
            if fast := len(boxes) - slow:
                self.delivered += fast
                self.latency.samples.append(0.0)  # handed over: no wait (one sample a message)
        self.count(message, len(boxes))
        return len(boxes)

    def count(self, message: Message, mailboxes: int) -> None:
        """Count a routed message and report it (`Traffic`)."""
        self.published += 1
        traffic = self.traffic
        if traffic.left <= 0:
            traffic.unreported_routed += 1
            return
        traffic.left -= 1
        self.emit(
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

    def join(self, session: str, group: str) -> None:
        self.acl.check("group", check_topic(group), session, "consume")
        self.router.join(group, session)

    def leave(self, session: str, group: str) -> None:
        self.router.leave(group, session)

    # -- upkeep -----------------------------------------------------------------------------
    def sweep(self, ttl: bool = True) -> None:
        """Redeliver overdue deliveries, release due delayed messages, expire by ttl; report
        the traffic; commit."""
        self.reliability.sweep(ttl)
        self.traffic.tick(self.published, self.topics)
        self.commit()

    async def run(self, interval: float = 0.05) -> None:
        """The sweeper: ack timeouts and delays every `interval`, ttl every ~0.5 s."""
        every = max(1, round(0.5 / interval))
        for ticks in itertools.count(1):
            await anyio.sleep(interval)
            # reported; what a failed sweep loses is an ack or a retry count: at-least-once holds
            with contextlib.suppress(JournalError):
                self.sweep(ttl=ticks % every == 0)

    def commit(self) -> None:
        """Make the journal's writes durable; JournalError when it cannot (full disk,
        read-only file): the caller must not acknowledge them, the operator is told."""
        if self.journal is not None:
            try:
                self.journal.commit()
            except sqlite3.Error as exc:
                raise self._journal_failed(exc) from exc

    def _journal_failed(self, exc: sqlite3.Error) -> JournalError:
        self.journal_failures += 1
        now = time.monotonic()
        if now - self._journal_reported >= 1.0:  # a failing disk fails every batch
            self._journal_reported = now
            path = str(self.journal.path) if self.journal is not None else ""
            log.error("bus journal %s: write failed: %s", path, exc)
            self.emit(BusJournalFailed(path=path, error=str(exc), failures=self.journal_failures))
        return JournalError(
            f"the journal could not be written ({exc}): not acknowledged, nothing was made "
            "durable; send it again"
        )

    # -- dead letters -----------------------------------------------------------------------
    def may_see(self, session: str, letter: DeadLetter) -> bool:
        """A dead letter is its receiver's (inbox, subscription), or a queue's consumers',
        and the operator's: another session may neither list nor replay it."""
        if session == OPERATOR:
            return True
        kind, _, rest = letter.mailbox.partition(":")
        if kind == "queue":
            return self.acl.rule("queue", rest).allows(session, "consume")
        if kind == "sub":
            return rest.startswith(session + ":")
        return rest == session

    def dead_letters(self, session: str = OPERATOR) -> list[DeadLetter]:
        return self.dead.list(lambda letter: self.may_see(session, letter))

    def statistics(self) -> BusStatistics:
        return snapshot(self)
