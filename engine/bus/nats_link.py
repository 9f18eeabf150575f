"""`open_link`: this engine's bus joined to a NATS server, so the sessions of every engine
on it (other decks, other hosts) share topics, direct messages, broadcasts and queues.

Sessions keep speaking the bus socket to their own engine, so identity (peer credentials and
tokens), ACLs, acks, redelivery and dead letters stay in the engine (docs/bus.md, "Bus on
NATS"). This module is the outbound half (the inbound one is engine.bus.nats_inbound;
subjects in engine.bus.nats_subjects): the bus places what must leave (topics, broadcasts,
direct messages to sessions it does not know, queue messages) in its outbox mailbox
`link:nats` too, journalled when reliable. The link is that mailbox's one consumer: it
publishes each message and acks it only on NATS's word (core NATS for best-effort, a
JetStream PubAck for reliable and queue messages), so a reliable message outlives a NATS
outage and an engine restart; until then the outbox's depth is the backlog.

nats-py is imported here and by the inbound half only (asyncio: the engine runs anyio on
asyncio), and only when a deck asks for NATS.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections import deque
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio

from engine.bus.bus_errors import NatsLinkError, UnknownTargetError
from engine.bus.message import MAX_TTL
from engine.bus.nats_inbound import ORIGIN, Inbound
from engine.bus.nats_subjects import Subjects

if TYPE_CHECKING:
    import asyncio
    from collections.abc import AsyncIterator
    from pathlib import Path

    from anyio.abc import TaskGroup

    from engine.bus.broker import MessageBus
    from engine.bus.queues import Entry, Mailbox

OUTBOX = "link:nats"
LINK = "@nats"
"""The outbox consumer's session name (`@`: apart from every deck session)."""
WINDOW = 256
"""Messages the link holds unpublished at once: the rest wait in the outbox."""
FANOUT_BYTES = 1 << 30
"""Reliable topic messages kept (oldest dropped past it): they are kept for their ttl's
maximum otherwise (7 days), long after every engine linked took them."""
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
        with (
            anyio.CancelScope(shield=True),
            anyio.move_on_after(2),
            contextlib.suppress(OSError, nats.errors.Error),  # the server is gone already
        ):
            await nc.close()


async def _connect(nats: Any, url: str) -> Any:
    up = False

    async def error(exc: Exception) -> None:
        if up:  # before, the NatsLinkError below says it once
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
        up = True
        return nc
    except (OSError, TimeoutError, nats.errors.Error) as exc:
        reason = str(exc) or type(exc).__name__
        raise NatsLinkError(f"cannot reach the NATS server {_shown(url)}: {reason}") from None


class NatsLink:
    """The outbox's one consumer (the `Consumer` protocol of engine.bus.queues)."""

    ack_window = True

    def __init__(self, bus: MessageBus, nc: Any, subjects: Subjects, engine: str) -> None:
        self.session = LINK
        self.credit = WINDOW
        self.bus, self.nc, self.subjects, self.engine = bus, nc, subjects, engine
        self.js = nc.jetstream(timeout=5)
        self._ready: deque[Entry] = deque()
        self._wake = anyio.Event()
        self._failures = 0
        self.box: Mailbox = bus.mailbox(OUTBOX)

    def deliver(self, entry: Entry) -> None:
        self._ready.append(entry)
        self._wake.set()

    async def declare(self, url: str) -> None:
        """The namespace's two streams (idempotent); a clear error without JetStream."""
        from nats.js.api import RetentionPolicy, StreamConfig

        s = self.subjects
        streams = (
            StreamConfig(
                name=s.fanout_stream, subjects=[s.fanout_filter()], max_age=MAX_TTL,
                max_bytes=FANOUT_BYTES,
            ),
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
                f"the NATS server {_shown(url)} refused the bus's JetStream streams "
                f"{s.fanout_stream}, {s.work_stream} ({exc!r}): is JetStream enabled "
                "(nats-server -js), and do the decks on this namespace run one swarmdeck?"
            ) from None

    async def start(self, tg: TaskGroup) -> None:
        await Inbound(self.bus, self.nc, self.subjects, self.engine).start(tg)
        box = self.box
        box.capacity, box.ack_timeout, box.max_attempts = self.bus.defaults[1], 60.0, 1000
        self.bus.outbox = box
        self.bus.attach(box, self)
        tg.start_soon(self._publish_forever)

    # -- out ----------------------------------------------------------------------------
    async def _publish_forever(self) -> None:
        """Publish in order; JetStream's PubAcks come back asynchronously (`_acked`), so
        the link does not wait a round trip per message."""
        while True:
            if not self._ready:
                self._wake = anyio.Event()
                await self._wake.wait()
                continue
            if self._failures:
                await anyio.sleep(min(0.05 * 2**self._failures, 5.0))
            entry = self._ready.popleft()
            message = entry.message
            subject = self.subjects.of_message(message)
            try:
                if not self.subjects.durable(message):
                    await self.nc.publish(subject, message.wire())  # buffered when away
                    self._settle(entry)
                    continue
                headers = {ORIGIN: self.engine, "Nats-Msg-Id": message.id}
                acked = await self.js.publish_async(subject, message.wire(), headers=headers)
            except Exception as exc:  # nats-py's errors: the outbox keeps it
                self._failed(entry, exc)
                continue
            acked.add_done_callback(lambda f, entry=entry: self._acked(f, entry))

    def _acked(self, future: asyncio.Future[Any], entry: Entry) -> None:
        if future.cancelled():
            self._failed(entry, "cancelled")
        elif (exc := future.exception()) is not None:
            self._failed(entry, exc)
        else:
            self._failures = 0
            self._settle(entry)

    def _failed(self, entry: Entry, why: object) -> None:
        """Not published: a reliable message is given back to the outbox (sent again after
        a back-off); a best-effort one is counted as dropped."""
        log.warning("bus link: %s not published: %r", entry.message.id, why)
        self._failures += 1
        with contextlib.suppress(UnknownTargetError):  # redelivered meanwhile (ack timeout)
            self._give_back(entry)

    def _settle(self, entry: Entry) -> None:
        bus = self.bus
        if entry.message.reliable:
            # committed by the bus's next sweep (≤ 50 ms): a crash before it sends the message
            # again after the restart, and JetStream drops that copy (same Nats-Msg-Id)
            with contextlib.suppress(UnknownTargetError):  # redelivered meanwhile: sent twice
                bus.ack(LINK, entry.message.id)
        else:
            bus.release(self.box, self)

    def _give_back(self, entry: Entry) -> None:
        if entry.message.reliable:
            self.bus.nack(LINK, entry.message.id)
        else:
            self.bus.reliability.drop(entry, self.box, "nats-unavailable")
            self.bus.release(self.box, self)
