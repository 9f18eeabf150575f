"""The link's inbound half: what other engines sent, placed in this engine's mailboxes.

Core subscriptions for best-effort messages; JetStream pull consumers for the others: one
per engine for reliable topics and broadcasts (from when the engine first linked on its
run), one per session for its reliable direct messages, one per queue shared by every
engine with a consumer of that queue (they compete, each pulling only what its consumers
can take now). A message is placed (`MessageBus.ingest`), committed to the journal, then
acked to JetStream: custody passes from the stream to this engine (docs/bus.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

import anyio

from engine.bus.bus_errors import BusError, JournalError, QueueFullError
from engine.bus.message import Message
from engine.bus.nats_subjects import consumer_name
from engine.bus.queues import Order
from engine.bus.router import queue

if TYPE_CHECKING:
    from collections.abc import Callable

    from anyio.abc import TaskGroup

    from engine.bus.broker import MessageBus
    from engine.bus.nats_subjects import Subjects
    from engine.bus.queues import Entry, Mailbox

ORIGIN = "Swarmdeck-Origin"
"""The header naming the engine that published a JetStream message (`engine_id`)."""
ATTEMPTS = "Swarmdeck-Attempts"
"""Deliveries a queue message had on the engine that returned it (`_return_orphans`)."""
PULL = 64
ORPHAN_GRACE = 1.0
log = logging.getLogger(__name__)


class Inbound:
    def __init__(self, bus: MessageBus, nc: Any, subjects: Subjects, engine: str) -> None:
        self.bus, self.nc, self.subjects, self.engine = bus, nc, subjects, engine
        self.js = nc.jetstream(timeout=5)
        self._pulling: set[str] = set()
        self._orphaned: dict[str, float] = {}
        self._demand = anyio.Event()
        self._news = anyio.Event()
        bus.wanted = self._wanted

    async def start(self, tg: TaskGroup) -> None:
        for subject in self.subjects.core():
            await self.nc.subscribe(subject, cb=self._on_core)
        fanout = await self._consumer(
            self.subjects.fanout_filter(), consumer_name("e", self.engine), new=True
        )
        tg.start_soon(self._pull, fanout, _any)
        tg.start_soon(self._watch, tg)

    async def _consumer(self, subject: str, durable: str, *, new: bool = False) -> Any:
        from nats.js.api import ConsumerConfig, DeliverPolicy

        policy = DeliverPolicy.NEW if new else DeliverPolicy.ALL
        config = ConsumerConfig(deliver_policy=policy, ack_wait=30, inactive_threshold=86400)
        stream = self.subjects.fanout_stream if new else self.subjects.work_stream
        return await self.js.pull_subscribe(subject, durable, stream=stream, config=config)

    def _decode(self, data: bytes) -> Message | None:
        try:
            message = Message.from_dict(json.loads(data))
            message.check_size()
        except (ValueError, KeyError, TypeError, BusError) as exc:
            log.warning("bus link: a NATS message is not a bus message: %s", exc)
            return None
        return message

    async def _on_core(self, msg: Any) -> None:
        message = self._decode(msg.data)
        if message is not None and not message.reliable:
            try:
                self.bus.ingest(message)
            except BusError as exc:
                log.warning("bus link: %s not delivered here: %s", message.id, exc)

    async def _pull(self, sub: Any, want: Callable[[], int]) -> None:
        """Fetch as much as `want()` allows; place, commit, then ack (nak what did not fit)."""
        while True:
            n = want()
            if n <= 0:
                with anyio.move_on_after(0.05):  # credit also comes back on acks
                    await self._demand.wait()
                self._demand = anyio.Event()
                continue
            try:
                await self._take(await _fetch(sub, n))
            except TimeoutError:  # nats-py's, or asyncio's from a partial batch
                continue
            except Exception as exc:  # nats-py's tree; unacked: JetStream delivers it again
                log.warning("bus link: fetch failed: %r", exc)
                await anyio.sleep(0.5)

    async def _take(self, batch: list[Any]) -> None:
        taken = []
        for msg in batch:
            message = self._decode(msg.data)
            if message is None:
                await msg.term()
                continue
            own = (msg.headers or {}).get(ORIGIN) == self.engine
            if own and message.route != "queue":  # routed here already when it was sent
                await msg.ack()
                continue
            try:
                self.bus.ingest(message, _attempts(msg.headers))
            except QueueFullError:
                await msg.nak(delay=1.0)
                continue
            except BusError as exc:
                log.warning("bus link: %s refused here: %s", message.id, exc)
                await msg.term()
                continue
            taken.append(msg)
        try:
            self.bus.commit()
        except JournalError:  # not durable here: JetStream keeps it
            for msg in taken:
                await msg.nak(delay=1.0)
            return
        for msg in taken:
            await msg.ack()

    async def _watch(self, tg: TaskGroup) -> None:
        """Start a puller for each new session (its direct messages) and for each queue
        that gained a consumer here; delay queues stay local (engine.bus.broker)."""
        while True:
            wanted = [
                (f"d:{s}", self.subjects.direct_filter(s), consumer_name("d", s), _any)
                for s in self.bus.router.sessions
            ]
            for box in list(self.bus.mailboxes.values()):
                if (
                    box.kind == "queue" and box.consumers and box.order is not Order.DELAY
                    and box.sharded is None  # per-replica shards stay on their engine
                ):  # fmt: skip
                    name = box.name.partition(":")[2]
                    pull = (self.subjects.queue_filter(name), consumer_name("q", name))
                    wanted.append((f"q:{name}", *pull, _room(self.bus.mailbox(queue(name)))))
            for key, subject, durable, want in wanted:
                if key in self._pulling:
                    continue
                try:
                    sub = await self._consumer(subject, durable)
                except Exception as exc:  # NATS away: tried again on the next round
                    log.warning("bus link: no consumer %s yet: %r", durable, exc)
                    break
                self._pulling.add(key)
                tg.start_soon(self._pull, sub, want)
            await self._return_orphans()
            with anyio.move_on_after(0.1):  # or at once when a queue gains a consumer
                await self._news.wait()
            self._news = anyio.Event()

    def _wanted(self, box: Mailbox) -> None:
        self._demand.set()
        if f"q:{box.name.partition(':')[2]}" not in self._pulling:
            self._news.set()

    async def _return_orphans(self) -> None:
        """Queue messages this engine holds with none of its consumers left to take them
        (their consumer died unacked, a pop gave up as they arrived, or a restart recovered
        them from the journal) go back to the queue's stream after `ORPHAN_GRACE`, their
        attempts counted in a header, so a consumer on another engine gets them. Linked,
        every queue message held here came from the stream, but for delay queues and
        per-replica shards, which stay local (engine.bus.broker)."""
        now = anyio.current_time()
        for box in list(self.bus.mailboxes.values()):
            if box.kind != "queue" or box.order is Order.DELAY or box.sharded is not None:
                continue
            key = box.name
            if box.consumers or not box.heap:
                self._orphaned.pop(key, None)
            elif now - self._orphaned.setdefault(key, now) >= ORPHAN_GRACE:
                for entry in box.purge(lambda e: True):
                    await self._return(entry, box)
                with contextlib.suppress(JournalError):  # reported; owed again on restart
                    self.bus.commit()

    async def _return(self, entry: Entry, box: Mailbox) -> None:
        message = entry.message
        headers = {
            ORIGIN: self.engine,
            ATTEMPTS: str(entry.attempt),
            "Nats-Msg-Id": f"{message.id}/{entry.attempt}",  # not a duplicate of the first
        }
        try:
            subject = self.subjects.of_message(message)
            await self.js.publish(subject, message.wire(), headers=headers)
        except Exception as exc:  # NATS away: it stays here, tried again next round
            log.warning("bus link: %s not returned to its queue: %r", message.id, exc)
            box.requeue(entry)
            return
        journal = self.bus.journal
        if message.reliable and journal is not None:
            journal.remove(box.name, message.id)


async def _fetch(sub: Any, n: int) -> list[Any]:
    """Up to `n` messages, as soon as one is there: nats-py's `fetch(n)` would wait for all
    `n` (or its timeout), so take one, then as many more as the consumer says it holds."""
    batch: list[Any] = await sub.fetch(1, timeout=1.0)
    pending = min(n - 1, batch[-1].metadata.num_pending)
    if pending > 0:
        with contextlib.suppress(TimeoutError):  # taken by another engine meanwhile
            batch += await sub.fetch(pending, timeout=0.05)
    return batch


def _attempts(headers: dict[str, str] | None) -> int:
    try:
        return max(0, int((headers or {}).get(ATTEMPTS, 0)))
    except ValueError:
        return 0


def _any() -> int:
    return PULL


def _room(box: Mailbox) -> Callable[[], int]:
    """How many queue messages to pull: what this engine's consumers can take now, and
    none while messages already wait here (they would sit in one engine's custody)."""

    def room() -> int:
        if box.heap:
            return 0
        return min(PULL, sum(max(c.credit, 0) for c in box.consumers))

    return room
