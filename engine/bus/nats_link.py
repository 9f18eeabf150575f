"""`run_link`: this engine's bus joined to a NATS server, so the sessions of every engine on
it (other decks, other hosts) share topics, direct messages, broadcasts and queues.

Sessions keep speaking the bus socket to their own engine, so identity (peer credentials and
tokens), ACLs, acks, redelivery and dead letters stay in the engine (docs/bus.md, "Bus on
NATS"). The link is two one-way paths, subjects as in engine.bus.nats_subjects:

out  The bus places what must leave (topics, broadcasts, direct messages to sessions it does
     not know, queue messages) in its outbox mailbox `link:nats` too, journalled when
     reliable. The link is that mailbox's one consumer: it publishes each message and acks
     it only on NATS's word (core NATS for best-effort, a JetStream PubAck for reliable and
     queue messages), so a reliable message outlives a NATS outage and an engine restart.
in   Core subscriptions for best-effort messages; JetStream pull consumers for the others:
     one per engine for reliable topics and broadcasts, one per session for its reliable
     direct messages, one per queue shared by every engine with a consumer of it (they
     compete, pulling only as much as their consumers can take). A message is placed in
     this engine's mailboxes (`MessageBus.ingest`), committed to the journal, then acked to
     JetStream: custody passes from the stream to the engine.

The one module importing nats-py (asyncio only: the engine runs anyio on asyncio).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
from collections import deque
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio

from engine.bus.bus_errors import BusError, JournalError, NatsLinkError, QueueFullError
from engine.bus.message import MAX_TTL, Message
from engine.bus.nats_subjects import Subjects, consumer_name
from engine.bus.queues import Order
from engine.bus.router import queue

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from anyio.abc import TaskGroup

    from engine.bus.broker import MessageBus
    from engine.bus.queues import Entry, Mailbox

OUTBOX = "link:nats"
LINK = "@nats"
"""The outbox consumer's session name (`@`: apart from every deck session)."""
ORIGIN = "Swarmdeck-Origin"
WINDOW = 256
"""Messages the link holds unpublished at once: the rest wait in the outbox."""
PULL = 64
log = logging.getLogger(__name__)


def _shown(url: str) -> str:
    return re.sub(r"//[^/@]*@", "//***@", url)


def engine_id(run_dir: Path) -> str:
    """Stable across restarts on one run (a restarted engine resumes its consumers)."""
    return hashlib.sha256(str(run_dir.absolute()).encode()).hexdigest()[:12]


@asynccontextmanager
async def open_link(bus: MessageBus, url: str, run_dir: Path) -> AsyncIterator[NatsLink]:
    """Connect, declare the streams, attach the outbox (NatsLinkError when any of it fails,
    before a session can publish); serve for the block, then detach and disconnect."""
    try:
        import nats
    except ImportError:
        raise NatsLinkError(
            f"the deck's bus is {_shown(url)} but nats-py is not installed: "
            "pip install 'swarmdeck[nats]'"
        ) from None
    nc = await _connect(nats, url)
    try:
        link = NatsLink(bus, nc, Subjects.of(url), engine_id(run_dir))
        await link.declare(url)
        async with anyio.create_task_group() as tg:
            await link.start(tg)
            try:
                yield link
            finally:
                tg.cancel_scope.cancel()
    finally:
        if bus.outbox is not None:
            bus.outbox = None
            bus.detach(link.box, link)
        with anyio.CancelScope(shield=True), anyio.move_on_after(2):
            await nc.close()


async def _connect(nats: Any, url: str) -> Any:
    async def error(exc: Exception) -> None:
        log.warning("NATS %s: %s", _shown(url), exc)

    try:
        with anyio.fail_after(15):
            nc = await nats.connect(
                url, no_echo=True, connect_timeout=3, allow_reconnect=True,
                max_reconnect_attempts=2, reconnect_time_wait=0.5, error_cb=error,
                name="swarmdeck",
            )  # fmt: skip
        # a few tries at start (a clear error beats a hang); once up, reconnect for ever
        nc.options["max_reconnect_attempts"] = -1
        return nc
    except (OSError, TimeoutError, nats.errors.Error) as exc:
        reason = str(exc) or type(exc).__name__
        raise NatsLinkError(f"cannot reach the NATS server {_shown(url)}: {reason}") from None


class NatsLink:
    """The outbox's consumer (the `Consumer` protocol) and the pullers' owner."""

    ack_window = True

    def __init__(self, bus: MessageBus, nc: Any, subjects: Subjects, engine: str) -> None:
        self.session = LINK
        self.credit = WINDOW
        self.bus, self.nc, self.subjects, self.engine = bus, nc, subjects, engine
        self.js = nc.jetstream(timeout=5)
        self._ready: deque[Entry] = deque()
        self._wake = anyio.Event()
        self._pulling: set[str] = set()
        self.box: Mailbox = bus.mailbox(OUTBOX)

    def deliver(self, entry: Entry) -> None:
        self._ready.append(entry)
        self._wake.set()

    async def declare(self, url: str) -> None:
        """The namespace's two streams (idempotent); a clear error without JetStream."""
        from nats.js.api import RetentionPolicy, StreamConfig

        s = self.subjects
        streams = (
            StreamConfig(name=s.fanout_stream, subjects=[s.fanout_filter()], max_age=MAX_TTL),
            StreamConfig(
                name=s.work_stream, subjects=[f"{s.ns}.rq.>", f"{s.ns}.rd.>"],
                retention=RetentionPolicy.WORK_QUEUE, max_age=MAX_TTL,
            ),
        )  # fmt: skip
        try:
            for config in streams:
                await self.js.add_stream(config)
        except Exception as exc:  # nats-py raises its own tree, and TimeoutError
            raise NatsLinkError(
                f"the NATS server {_shown(url)} refused the bus's JetStream streams ({exc!r}); "
                "is JetStream enabled (nats-server -js)?"
            ) from None

    async def start(self, tg: TaskGroup) -> None:
        for subject in self.subjects.core():
            await self.nc.subscribe(subject, cb=self._on_core)
        fanout = await self._consumer(
            self.subjects.fanout_filter(), consumer_name("e", self.engine), new=True
        )
        tg.start_soon(self._pull, fanout, _any)
        box = self.box
        box.capacity, box.ack_timeout, box.max_attempts = self.bus.defaults[1], 60.0, 1000
        self.bus.outbox = box
        self.bus.attach(box, self)
        tg.start_soon(self._publish_forever)
        tg.start_soon(self._watch, tg)

    async def _consumer(self, subject: str, durable: str, *, new: bool = False) -> Any:
        from nats.js.api import ConsumerConfig, DeliverPolicy

        policy = DeliverPolicy.NEW if new else DeliverPolicy.ALL
        config = ConsumerConfig(deliver_policy=policy, ack_wait=30, inactive_threshold=86400)
        stream = self.subjects.fanout_stream if new else self.subjects.work_stream
        return await self.js.pull_subscribe(subject, durable, stream=stream, config=config)

    # -- out ----------------------------------------------------------------------------
    async def _publish_forever(self) -> None:
        failures = 0
        while True:
            if not self._ready:
                self._wake = anyio.Event()
                await self._wake.wait()
                continue
            entry = self._ready.popleft()
            if await self._publish(entry.message):
                failures = 0
                self._settle(entry)
                continue
            failures += 1
            self._give_back(entry)
            await anyio.sleep(min(0.1 * 2**failures, 5.0))

    async def _publish(self, message: Message) -> bool:
        subject = self.subjects.of_message(message)
        try:
            if not self.subjects.durable(message):
                await self.nc.publish(subject, message.wire())  # buffered while reconnecting
            else:
                headers = {ORIGIN: self.engine, "Nats-Msg-Id": message.id}
                await self.js.publish(subject, message.wire(), headers=headers)
        except Exception as exc:  # nats-py's errors, TimeoutError: the outbox keeps it
            log.warning("bus link: %s not published to %s: %r", message.id, subject, exc)
            return False
        return True

    def _settle(self, entry: Entry) -> None:
        bus = self.bus
        if entry.message.reliable:
            bus.ack(LINK, entry.message.id)
            with contextlib.suppress(JournalError):  # reported; owed again after a restart
                bus.commit()
        else:
            bus.release(self.box, self)

    def _give_back(self, entry: Entry) -> None:
        if entry.message.reliable:
            self.bus.nack(LINK, entry.message.id)
        else:
            self.bus.reliability.drop(entry, self.box, "nats-unavailable")
            self.bus.release(self.box, self)

    # -- in -----------------------------------------------------------------------------
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
                await anyio.sleep(0.02)
                continue
            try:
                batch = await sub.fetch(n, timeout=1.0)
                await self._take(batch)
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
                self.bus.ingest(message)
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
                if box.kind == "queue" and box.consumers and box.order is not Order.DELAY:
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
            await anyio.sleep(0.1)


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
