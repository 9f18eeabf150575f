"""One socket connection to the bus: read frames in batches, handle them, write replies.

Each connection authenticates once (`hello` with its session name and per-session token),
so the engine, not the client, says who sent a message. The reader takes whatever the
socket holds (up to 64 KiB a read), handles every frame in it, commits the journal once, and only
then lets the writer send: no reply ever acknowledges an uncommitted write, and one SQLite
transaction covers the whole batch. Replies and pushed messages are gathered and written
with one `send` per connection per wake-up. Every failure of one frame becomes an error
frame for that frame only; the connection and the engine carry on.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

import anyio

from engine.bus.commands import COMMANDS, Command
from engine.bus.errors import (
    BadFrameError,
    BusError,
    BusTimeoutError,
    NoRespondersError,
    NotAuthenticatedError,
    UnknownCommandError,
    UnknownTargetError,
)
from engine.bus.frames import MAX_FRAME, MAX_PAYLOAD, FrameDecoder, encode, error_frame, field
from engine.bus.router import subscription
from engine.bus.topics import check_pattern

if TYPE_CHECKING:
    from anyio.abc import SocketStream, TaskGroup

    from engine.bus.broker import MessageBus
    from engine.bus.queues import Entry, Mailbox

log = logging.getLogger(__name__)
_NOT_REFUSALS = (BusTimeoutError, NoRespondersError, UnknownTargetError)
_BACKLOG = 8 << 20  # stop reading a connection whose replies pile up past this
_READ = 1 << 16  # a burst of ~350 frames, then the loop may run the writers that return credit
_ERRORS = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError)


class SocketSubscription:
    """A subscription streamed to a connection; `count` ends it after that many messages.

    Best-effort credit comes back when the writer has handed the bytes to the socket, so
    `window` bounds what one subscription can pile up in the connection's buffer."""

    ack_window = True

    def __init__(self, conn: Connection, sub: int, box: Mailbox, window: int, count: int | None):
        self.session = conn.session
        self.credit = window if count is None else min(window, count)
        self.box = box
        self.unflushed = 0
        self._push = conn.push
        self._heads = [b'{"sub":%d,"attempt":%d,"msg":' % (sub, n) for n in range(8)]
        self._sub = sub
        self._remaining = count

    def deliver(self, entry: Entry) -> None:
        message = entry.message
        attempt = entry.attempt
        head = self._heads[attempt] if attempt < 8 else b'{"sub":%d,"attempt":%d,"msg":' % (
            self._sub, attempt)  # fmt: skip
        self._push(head + message.wire() + b"}\n")
        if not message.reliable:
            self.unflushed += 1
        if self._remaining is not None:
            self._remaining -= 1
            if self._remaining == 0:
                self.credit = -(1 << 30)  # finished: credit given back later stays negative


class Connection:
    def __init__(self, stream: SocketStream, bus: MessageBus) -> None:
        self.stream = stream
        self.bus = bus
        self.session = ""
        self.size = 0
        self._out: list[bytes] = []
        self._out_size = 0
        self._wake = anyio.Event()
        self._woken = False
        self._drained = anyio.Event()
        self._subs: dict[int, SocketSubscription] = {}
        self._tg: TaskGroup | None = None

    # -- peer (what commands use) -----------------------------------------------------------
    def subscribe(self, pattern: str, window: int, count: int | None) -> int:
        sub = len(self._subs) + 1
        while sub in self._subs:
            sub += 1
        box = self.bus.mailbox(subscription(self.session, check_pattern(pattern)))
        self._subs[sub] = SocketSubscription(self, sub, box, window, count)
        self.bus.attach(box, self._subs[sub])
        return sub

    def unsubscribe(self, sub: int) -> None:
        consumer = self._subs.pop(sub, None)
        if consumer is None:
            raise UnknownTargetError(f"no subscription {sub} on this connection")
        self.bus.detach(consumer.box, consumer)

    def push(self, data: bytes) -> None:
        self._out.append(data)
        self._out_size += len(data)
        if not self._woken:  # one wake-up per batch, not one Event.set() per frame
            self._woken = True
            self._wake.set()

    # -- life -------------------------------------------------------------------------------
    async def serve(self) -> None:
        self.bus.connections += 1
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                tg.start_soon(self._writer)
                await self._reader()
                tg.cancel_scope.cancel()
        finally:
            self.bus.connections -= 1
            for consumer in self._subs.values():
                self.bus.detach(consumer.box, consumer)
            self._subs.clear()
            with contextlib.suppress(Exception):
                await self.stream.aclose()

    async def _reader(self) -> None:
        decoder = FrameDecoder(MAX_FRAME)
        handle = self._handle
        while True:
            try:
                data = await self.stream.receive(_READ)
            except _ERRORS:
                return
            for item, size in decoder.feed(data):
                self.size = size
                handle(item)
            self.bus.commit()
            if self._out_size > _BACKLOG:
                self._drained = anyio.Event()
                await self._drained.wait()

    async def _writer(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            self._woken = False
            while self._out:
                data = b"".join(self._out)
                self._out.clear()
                self._out_size = 0
                try:
                    await self.stream.send(data)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await self.stream.aclose()
                    return
                for consumer in self._subs.values():
                    if consumer.unflushed:
                        credit, consumer.unflushed = consumer.unflushed, 0
                        self.bus.release(consumer.box, consumer, credit)
            self._drained.set()

    # -- frames -----------------------------------------------------------------------------
    def _handle(self, item: dict[str, Any] | BusError) -> None:
        if isinstance(item, BusError):
            self._fail(item, None, "?")
            return
        req, op = item.get("req"), item.get("op")
        try:
            reply = self._dispatch(item, op)
        except BusError as exc:
            self._fail(exc, req, op)
            return
        except Exception as exc:  # a bug must cost one frame, not the connection or engine
            log.exception("bus command %r failed", op)
            self._fail(BusError(f"internal error: {exc!r}"), req, op)
            return
        if reply is not None and not item.get("quiet"):
            self.push(encode({"re": req, "ok": True, **reply}))

    def _dispatch(self, frame: dict[str, Any], op: object) -> dict[str, Any] | None:
        command = COMMANDS.get(op) if self.session and isinstance(op, str) else None
        if command is None:
            return self._unusual(frame, op)
        if command.blocking:
            assert self._tg is not None
            self._tg.start_soon(self._blocking, command, frame, self.size)
            return None
        result = command.run(self, frame)
        assert isinstance(result, dict)
        return result

    def _unusual(self, frame: dict[str, Any], op: object) -> dict[str, Any]:
        """`hello`, or the error a frame earns before any command runs."""
        if not isinstance(op, str):
            raise BadFrameError("field 'op' is required: the command name, e.g. 'publish'")
        if op == "hello":
            session = field(frame, "session", str)
            self.session = self.bus.authenticate(session, field(frame, "token", str))
            return {"session": session, "limits": {"frame": MAX_FRAME, "payload": MAX_PAYLOAD}}
        if not self.session:
            raise NotAuthenticatedError("send hello with your session name and token first")
        raise UnknownCommandError(f"unknown command {op!r} (known: {', '.join(COMMANDS)})")

    async def _blocking(self, command: Command, frame: dict[str, Any], size: int) -> None:
        req, op = frame.get("req"), str(frame.get("op"))
        try:
            self.size = size
            result = command.run(self, frame)
            reply = await result if not isinstance(result, dict) else result
        except BusError as exc:
            self.bus.commit()
            self._fail(exc, req, op)
            return
        except Exception as exc:
            log.exception("bus command %r failed", op)
            self._fail(BusError(f"internal error: {exc!r}"), req, op)
            return
        self.bus.commit()
        self.push(encode({"re": req, "ok": True, **reply}))

    def _fail(self, error: BusError, req: object, op: object) -> None:
        if not isinstance(error, _NOT_REFUSALS):
            self.bus.refused(self.session or None, str(op)[:64], error)
        self.push(encode(error_frame(error, req if _json_scalar(req) else None)))


def _json_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)
