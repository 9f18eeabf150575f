"""One socket connection to the bus: read frames in batches, handle them, write replies.

Each connection authenticates once (`hello` with its session name and per-session token,
checked against the peer's SO_PEERCRED pid: engine.bus.tokens), within
`BusLimits.hello_timeout`, so the engine, not the client, says who sent a message. Every
resource a connection can make the engine hold is bounded by `BusLimits` (waiting
requests, subscriptions, windows, queued bytes). The reader takes whatever the
socket holds (up to 64 KiB a read), handles every frame in it, commits the journal once, and only
then lets the writer send: no reply ever acknowledges an uncommitted write, and one SQLite
transaction covers the whole batch. Replies and pushed messages are gathered and written
with one `send` per connection per wake-up. Every failure of one frame becomes an error
frame for that frame only; the connection and the engine carry on. When the journal cannot
be committed (full disk), every reply of the batch that promised a journalled write is
replaced by a `journal-failed` error before anything is sent.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import SocketAttribute

from engine.bus.bus_errors import (
    BadFrameError,
    BusError,
    BusTimeoutError,
    JournalError,
    LimitExceededError,
    NoRespondersError,
    NotAuthenticatedError,
    UnknownCommandError,
    UnknownTargetError,
)
from engine.bus.frames import MAX_FRAME, MAX_PAYLOAD, FrameDecoder, encode, error_frame, field
from engine.bus.router import subscription
from engine.bus.socket_subscription import SocketSubscription
from engine.bus.topics import check_pattern
from engine.bus.wire_commands import COMMANDS, Command

if TYPE_CHECKING:
    from anyio.abc import SocketStream, TaskGroup

    from engine.acceptor import Ticket
    from engine.bus.broker import MessageBus

log = logging.getLogger(__name__)
_NOT_REFUSALS = (BusTimeoutError, NoRespondersError, UnknownTargetError)
_BACKLOG = 8 << 20  # stop reading a connection whose replies pile up past this
_READ = 1 << 16  # a burst of ~350 frames, then the loop may run the writers that return credit
_ERRORS = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError)
_UCRED = struct.Struct("3i")  # SO_PEERCRED: pid, uid, gid


class Connection:
    def __init__(self, stream: SocketStream, bus: MessageBus, ticket: Ticket | None = None):
        self.stream = stream
        self.bus = bus
        self.session = ""
        self.size = 0
        self._ticket = ticket
        self._out: list[bytes] = []
        self._out_size = 0
        self._sending = 0  # bytes handed to the socket and not yet taken by it
        self._pending = 0  # blocking requests waiting
        self._promised: list[tuple[int, object]] = []
        """(index in `_out` or -1 when quiet, req) of this batch's replies that acknowledge
        a journal write: withdrawn if the commit fails."""
        self._wake = anyio.Event()
        self._woken = False
        self._drained = anyio.Event()
        self._subs: dict[int, SocketSubscription] = {}
        self._tg: TaskGroup | None = None

    # -- peer (what commands use) -----------------------------------------------------------
    def subscribe(self, pattern: str, window: int, count: int | None) -> int:
        limits = self.bus.limits
        if window > limits.window:
            raise LimitExceededError(f"window must be at most {limits.window}, got {window}")
        if len(self._subs) >= limits.subscriptions:
            raise LimitExceededError(
                f"at most {limits.subscriptions} subscriptions per connection; unsubscribe "
                "one or use a wider pattern"
            )
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

    def over_budget(self) -> bool:
        """More queued to this client than `BusLimits.outbox` allows: it stopped reading."""
        return self._out_size + self._sending > self.bus.limits.outbox

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
                tg.start_soon(self._hello_deadline, tg)
                await self._reader()
                tg.cancel_scope.cancel()
        finally:
            self.bus.connections -= 1
            for consumer in self._subs.values():
                self.bus.detach(consumer.box, consumer)
            self._subs.clear()
            with contextlib.suppress(Exception):
                await self.stream.aclose()

    async def _hello_deadline(self, tg: TaskGroup) -> None:
        """A connection that never says hello is closed: it holds a descriptor for nothing."""
        timeout = self.bus.limits.hello_timeout
        await anyio.sleep(timeout)
        if self.session:
            return
        error = NotAuthenticatedError(f"no hello within {timeout:g} s: closing")
        with contextlib.suppress(*_ERRORS, OSError), anyio.move_on_after(1.0):
            await self.stream.send(encode(error_frame(error)))
        tg.cancel_scope.cancel()

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
            try:
                self.bus.commit()
            except JournalError as exc:
                self._withdraw(exc)
            self._promised.clear()
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
                self._sending = len(data)
                try:
                    await self.stream.send(data)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await self.stream.aclose()
                    return
                self._sending = 0
                for consumer in list(self._subs.values()):
                    if (notice := consumer.notice()) is not None:
                        self.push(notice)
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
        journal = self.bus.journal
        writes = journal.writes if journal is not None else 0
        try:
            reply = self._dispatch(item, op)
        except BusError as exc:
            self._fail(exc, req, op)
            return
        except Exception as exc:  # a bug must cost one frame, not the connection or engine
            log.exception("bus command %r failed", op)
            self._fail(BusError(f"internal error: {exc!r}"), req, op)
            return
        quiet = reply is None or bool(item.get("quiet"))
        if reply is not None and not quiet:
            self.push(encode({"re": req, "ok": True, **reply}))
        if journal is not None and journal.writes != writes and reply is not None:
            self._promised.append((-1 if quiet else len(self._out) - 1, req))

    def _withdraw(self, error: JournalError) -> None:
        """The batch's commit failed: no reply of it may acknowledge a journal write."""
        for index, req in self._promised:
            frame = encode(error_frame(error, req if _json_scalar(req) else None))
            if index < 0:
                self.push(frame)
            else:
                self._out_size += len(frame) - len(self._out[index])
                self._out[index] = frame
        if self._promised:
            self.bus.refused(self.session or None, "commit", error)

    def _dispatch(self, frame: dict[str, Any], op: object) -> dict[str, Any] | None:
        command = COMMANDS.get(op) if self.session and isinstance(op, str) else None
        if command is None:
            return self._unusual(frame, op)
        if command.blocking:
            if self._pending >= self.bus.limits.pending:
                raise LimitExceededError(
                    f"at most {self.bus.limits.pending} requests may wait at once on one connection"
                )
            assert self._tg is not None
            self._pending += 1
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
            token = field(frame, "token", str)
            self.session = self.bus.authenticate(session, token, self._peer())
            if self._ticket is not None:
                self._ticket.hello()
            return {"session": session, "limits": {"frame": MAX_FRAME, "payload": MAX_PAYLOAD}}
        if not self.session:
            raise NotAuthenticatedError("send hello with your session name and token first")
        raise UnknownCommandError(f"unknown command {op!r} (known: {', '.join(COMMANDS)})")

    def _peer(self) -> tuple[int, int] | None:
        """The connecting process's (pid, uid), from the kernel."""
        raw = self.stream.extra(SocketAttribute.raw_socket, None)
        if raw is None or raw.family != socket.AF_UNIX:
            return None
        pid, uid, _ = _UCRED.unpack(
            raw.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
        )
        return pid, uid

    async def _blocking(self, command: Command, frame: dict[str, Any], size: int) -> None:
        req, op = frame.get("req"), str(frame.get("op"))
        try:
            self.size = size
            result = command.run(self, frame)
            reply = await result if not isinstance(result, dict) else result
            self.bus.commit()
        except BusError as exc:
            with contextlib.suppress(JournalError):
                self.bus.commit()
            self._fail(exc, req, op)
            return
        except Exception as exc:
            log.exception("bus command %r failed", op)
            self._fail(BusError(f"internal error: {exc!r}"), req, op)
            return
        finally:
            self._pending -= 1
        self.push(encode({"re": req, "ok": True, **reply}))

    def _fail(self, error: BusError, req: object, op: object) -> None:
        if not isinstance(error, _NOT_REFUSALS):
            self.bus.refused(self.session or None, str(op)[:64], error)
        self.push(encode(error_frame(error, req if _json_scalar(req) else None)))


def _json_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)
