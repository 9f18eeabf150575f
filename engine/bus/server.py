"""The bus endpoint: a Unix socket (0600, in a 0700 directory) speaking line-delimited JSON.

Each connection authenticates once (`hello` with its session name and per-session token),
so the engine, not the client, says who sent a message. A connection reads a batch of
frames, handles them, commits the journal once, then lets its writer send the replies:
no reply ever acknowledges an uncommitted write. Every failure of one frame becomes an
error frame for that frame only; the connection and the engine carry on.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from engine.bus.broker import MessageBus
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
from engine.bus.journal import Journal
from engine.bus.router import subscription
from engine.bus.topics import check_pattern

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable

    from anyio.abc import SocketStream, TaskGroup, TaskStatus

    from engine.bus.queues import Entry, Mailbox
    from engine.events import Event

log = logging.getLogger(__name__)
_NOT_REFUSALS = (BusTimeoutError, NoRespondersError, UnknownTargetError)
_BACKLOG = 8 << 20  # stop reading a connection whose replies pile up past this


def socket_path(run_dir: Path) -> Path:
    """`RUN/bus/bus.sock`, or under $XDG_RUNTIME_DIR when that path is too long for AF_UNIX."""
    path = run_dir.absolute() / "bus" / "bus.sock"
    if len(os.fsencode(path)) < 100:
        return path
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/swarmdeck-{os.getuid()}")
    digest = hashlib.sha256(os.fsencode(run_dir.absolute())).hexdigest()[:16]
    return base / f"swarmdeck-{digest}" / "bus.sock"


class SocketSubscription:
    """A subscription streamed to a connection; `count` ends it after that many messages."""

    ack_window = True

    def __init__(self, conn: Connection, sub: int, box: Mailbox, window: int, count: int | None):
        self.session = conn.session
        self.credit = window if count is None else min(window, count)
        self.box = box
        self.unflushed = 0
        self._conn = conn
        self._head = b'{"sub":%d,"attempt":%%d,"msg":' % sub
        self._remaining = count

    def deliver(self, entry: Entry, mailbox: Mailbox) -> None:
        self._conn.push(self._head % entry.attempt + entry.message.wire() + b"}\n")
        self.unflushed += not entry.message.reliable
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
        while True:
            try:
                data = await self.stream.receive(65536)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                return
            for item, size in decoder.feed(data):
                self.size = size
                self._handle(item)
            self.bus.commit()
            if self._out_size > _BACKLOG:
                self._drained = anyio.Event()
                await self._drained.wait()

    async def _writer(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
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
        if not isinstance(op, str):
            raise BadFrameError("field 'op' is required: the command name, e.g. 'publish'")
        if op == "hello":
            session = field(frame, "session", str)
            self.session = self.bus.authenticate(session, field(frame, "token", str))
            return {"session": session, "limits": {"frame": MAX_FRAME, "payload": MAX_PAYLOAD}}
        if not self.session:
            raise NotAuthenticatedError("send hello with your session name and token first")
        command = COMMANDS.get(op)
        if command is None:
            raise UnknownCommandError(f"unknown command {op!r} (known: {', '.join(COMMANDS)})")
        if command.blocking:
            assert self._tg is not None
            self._tg.start_soon(self._blocking, command, frame, self.size)
            return None
        result = command.run(self, frame)
        assert isinstance(result, dict)
        return result

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


async def serve(bus: MessageBus, path: Path, *, task_status: TaskStatus[None]) -> None:
    """Listen on `path` until cancelled; one task per connection."""
    _clear(path)
    listener = await anyio.create_unix_listener(path)
    os.chmod(path, 0o600)  # the 0700 directory already keeps others out meanwhile

    async def handle(stream: SocketStream) -> None:
        await Connection(stream, bus).serve()

    task_status.started()
    try:
        async with listener:
            await listener.serve(handle)
    finally:
        _clear(path)


def _clear(path: Path) -> None:
    """A private directory, without the socket a previous (killed) engine left there."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


@asynccontextmanager
async def open_bus(
    run_dir: Path,
    sessions: Iterable[str],
    emit: Callable[[Event], None],
    *,
    synchronous: str = "NORMAL",
    **limits: Any,
) -> AsyncIterator[MessageBus]:
    """A bus for one run: journal `RUN/bus/journal.sqlite3` (recovered if it exists), its
    socket, its sweeper; everything is closed on exit."""
    directory = run_dir / "bus"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    journal = Journal(directory / "journal.sqlite3", synchronous)
    try:
        bus = MessageBus(sessions, emit, journal, **limits)
        bus.socket_path = socket_path(run_dir)
        async with anyio.create_task_group() as tg:
            await tg.start(serve, bus, bus.socket_path)
            tg.start_soon(bus.run)
            try:
                yield bus
            finally:
                tg.cancel_scope.cancel()
    finally:
        journal.close()
