"""Serve one Engine on a Unix socket to any number of clients (operators and viewers).

A hub listener sees every engine event as it is emitted and fans it out: facts are encoded
once and queued to every client in order, screen changes and statistics samples only mark
each client's Outbox dirty. One writer per client drains its Outbox at the socket's pace, so a
slow client gets fewer, coalesced screen frames and never slows the engine or its peers.

Authority lives here: a command whose table entry says `operator` is refused for a viewer
before anything runs, and the refusal is an engine event (CommandRefused). A reply is
queued only after the events its command caused, so a client's mirror is current when
its call returns. Resize follows the last operator who sent one (no negotiation).

Size: each client's course (hello, role, outbox, writer) on the control socket; the command
table is handlers.py.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import struct
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio

from engine.acceptor import Gate, accept_forever
from engine.errors import SwarmdeckError
from engine.events import (
    AttentionChanged,
    ClientAttached,
    ClientDetached,
    CommandRefused,
    ContentionSampled,
    PoolSampled,
    SchedulerSampled,
    ScreenChanged,
    SessionAdded,
    SessionDetailChanged,
    SessionStateChanged,
)
from engine.loop_noise import quiet_cancelled_wakeups
from engine.remote.handlers import HANDLERS, Context
from engine.remote.outbox import Outbox
from engine.remote.protocol import (
    HELLO_TIMEOUT,
    MAX_CLIENT_FRAME,
    ROLES,
    SERVED_VERSIONS,
    VERSION,
    LineSocket,
    client_name,
    decode,
    encode,
    error_to_wire,
    screen_to_wire,
    statistics_to_wire,
)
from engine.remote.remote_errors import (
    NotPermittedError,
    ProtocolError,
    ProtocolVersionError,
    TooManyClientsError,
    UnknownOperationError,
)

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Callable
    from pathlib import Path

    from anyio.abc import SocketStream, TaskGroup

    from engine.acceptor import Ticket
    from engine.engine import Engine
    from engine.events import Event

log = logging.getLogger(__name__)
_UCRED = struct.Struct("3i")  # SO_PEERCRED: pid, uid, gid
MAX_CLIENTS = 256
"""Control-socket clients at once (attached rooms, SSH viewers' rooms, `ls`/`stop`)."""
MAX_UNAUTHENTICATED = 32
"""Of those, still owing their hello (which has HELLO_TIMEOUT to come)."""


class _Client:
    def __init__(
        self,
        ident: int,
        role: str,
        name: str,
        stream: LineSocket,
        interactive: Callable[[str], bool],
    ) -> None:
        self.id, self.role, self.name, self.stream = ident, role, name, stream
        self.outbox = Outbox(interactive=interactive)
        self.sent: dict[str, tuple[int, int, int]] = {}  # session -> (revision, cols, rows)
        self.scope = anyio.CancelScope()
        self.reason = "closed by client"

    def drop(self, reason: str) -> None:
        self.reason = reason
        self.scope.cancel()


class ControlServer:
    def __init__(self, engine: Engine, socket_path: Path) -> None:
        self.engine = engine
        self.socket_path = socket_path
        self.stop_requested = anyio.Event()
        self.clients: dict[int, _Client] = {}
        self._ids = itertools.count(1)
        self.unlisten = engine.hub.listen(self._dispatch)
        self._context = Context(engine, self.stop_requested.set)
        self._screens: dict[tuple[str, int], tuple[int, bytes]] = {}
        self._stats: tuple[int, bytes] | None = None
        self._samples: dict[str, Event] = {}
        self._generation = 0
        self.gate = Gate(connections=MAX_CLIENTS, unauthenticated=MAX_UNAUTHENTICATED)
        """Caps on clients (engine.acceptor): change its fields to change them live."""

    # -- fan-out: events reach `_dispatch` synchronously, in the engine's order, as they
    # are emitted (so a reply always follows the events its command caused) -------------
    def _dispatch(self, event: Event) -> None:
        if isinstance(event, ScreenChanged):
            for client in self.clients.values():
                client.outbox.mark_screen(event.session)
            return
        if isinstance(event, (PoolSampled, SchedulerSampled, ContentionSampled)):
            self._samples[event.kind] = event
            self._generation += 1
            for client in self.clients.values():
                client.outbox.mark_stats()
            return
        if not self.clients:
            return
        frame = encode(self._event_wire(event))
        for client in list(self.clients.values()):
            client.outbox.add_fact(frame)
            if client.outbox.overflow:
                client.drop(client.outbox.overflow)

    def _event_wire(self, event: Event) -> dict[str, Any]:
        wire: dict[str, Any] = {"push": "event", "event": event.model_dump(mode="json")}
        if isinstance(
            event, SessionStateChanged | SessionDetailChanged | SessionAdded | AttentionChanged
        ) and (event.session in self.engine.sessions):
            wire["info"] = self.engine.session_info(event.session).model_dump(mode="json")
        return wire

    # -- coalesced frames, encoded once for every client at the same revision ------------
    def stats_frame(self) -> bytes:
        if self._stats is None or self._stats[0] != self._generation:
            wire = {"push": "stats", **statistics_to_wire(self.engine)}
            wire["events"] = [e.model_dump(mode="json") for e in self._samples.values()]
            self._stats = (self._generation, encode(wire))
        return self._stats[1]

    def screen_frame(self, client: _Client, name: str) -> bytes | None:
        """A delta from what `client` last got, or a snapshot (first time, new shape)."""
        session = self.engine.sessions.get(name)
        if session is None:
            return None
        screen, base = session.screen, client.sent.get(name)
        if base is not None and base[0] == screen.revision:
            return None
        full = base is None or base[1:] != (screen.cols, screen.rows)
        since = -1 if full or base is None else base[0]
        cached = self._screens.get((name, since))
        if cached is None or cached[0] != screen.revision:
            data = screen.snapshot() if full else screen.delta(since)
            wire = {"push": "screen", "session": name, **screen_to_wire(data)}
            cached = self._screens[(name, since)] = (screen.revision, encode(wire))
            if len(self._screens) > 64 + 4 * len(self.engine.sessions):
                self._screens = {(name, since): cached}
        client.sent[name] = (screen.revision, screen.cols, screen.rows)
        return cached[1]

    # -- one connection -----------------------------------------------------------------
    async def handle(self, stream: SocketStream, ticket: Ticket | None = None) -> None:
        line_socket = LineSocket(stream)
        async with stream, contextlib.aclosing(line_socket.lines(MAX_CLIENT_FRAME)) as frames:
            try:
                client = await self._hello(line_socket, frames)
            except (SwarmdeckError, TimeoutError, StopAsyncIteration, OSError) as exc:
                log.info("control client refused at hello: %s", exc)
                return
            if ticket is not None:
                ticket.hello()
            try:
                with client.scope:
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(self._write, client)
                        await self._read(client, frames, tg)
                        tg.cancel_scope.cancel()
            finally:
                self.clients.pop(client.id, None)
                self.engine.hub.emit(ClientDetached(client=client.id, reason=client.reason))

    async def _hello(self, stream: LineSocket, frames: AsyncGenerator[bytes, None]) -> _Client:
        with anyio.fail_after(HELLO_TIMEOUT):
            line = await anext(frames)
        try:
            frame = decode(line)
            client = self._check_hello(frame, stream)
        except SwarmdeckError as exc:
            with contextlib.suppress(anyio.BrokenResourceError, OSError):
                await stream.send(encode({"re": 0, "ok": False, "error": error_to_wire(exc)}))
            raise
        # Events so far were dispatched as they were emitted: the snapshot below is newer.
        attach = self._attach(client)
        # Registered in the same step as the snapshot: events emitted while the reply is
        # being sent queue in its outbox (written only after the reply) instead of being lost.
        self.clients[client.id] = client
        try:
            await stream.send(encode({"re": frame.get("req"), "ok": True, "result": attach}))
        except BaseException:
            self.clients.pop(client.id, None)
            raise
        self.engine.hub.emit(ClientAttached(client=client.id, role=client.role, name=client.name))
        return client

    def _check_hello(self, frame: dict[str, Any], stream: LineSocket) -> _Client:
        if frame.get("op") != "hello":
            raise ProtocolError("the first frame must be hello")
        if frame.get("protocol") not in SERVED_VERSIONS:
            asked, also = frame.get("protocol"), ", ".join(map(str, SERVED_VERSIONS[:-1]))
            raise ProtocolVersionError(
                f"server speaks protocol {VERSION} (also {also}), client asked {asked}"
            )
        role = frame.get("role", "viewer")
        if role not in ROLES:
            raise ProtocolError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        return _Client(next(self._ids), role, client_name(frame), stream, self.engine.interactive)

    def _attach(self, client: _Client) -> dict[str, Any]:
        """Everything a client needs to paint: deck, sessions, every screen, statistics."""
        sessions = []
        for name, session in self.engine.sessions.items():
            snapshot = session.screen.snapshot()
            client.sent[name] = (snapshot.revision, snapshot.cols, snapshot.rows)
            sessions.append({
                "info": session.info().model_dump(mode="json"),
                "spec": session.spec.model_dump(mode="json", by_alias=True),
                "screen": screen_to_wire(snapshot),
            })  # fmt: skip
        return {
            "protocol": VERSION,
            "pid": os.getpid(),
            "client": client.id,
            "role": client.role,
            "deck": self.engine.deck.model_dump(mode="json", by_alias=True),
            "deck_path": os.fspath(self.engine.deck.path),
            "run_dir": os.fspath(self.engine.run_dir),
            "sessions": sessions,
            "stats": statistics_to_wire(self.engine),
            "contention_history": [
                e.model_dump(mode="json") for e in self.engine.contention_history()
            ],
            "alert_history": [e.model_dump(mode="json") for e in self.engine.alert_history()],
            "bus_history": [e.model_dump(mode="json") for e in self.engine.bus_history()],
        }

    async def _read(
        self, client: _Client, frames: AsyncGenerator[bytes, None], tg: TaskGroup
    ) -> None:
        """Each command runs in its own task, started in arrival order: synchronous engine
        calls complete in that order, slow ones (terminate) do not hold up the next."""
        try:
            async for line in frames:
                try:
                    frame = decode(line)
                except ProtocolError as exc:
                    error = {"re": None, "ok": False, "error": error_to_wire(exc)}
                    client.outbox.add_fact(encode(error))
                    continue
                tg.start_soon(self._run, client, frame)
        except ProtocolError as exc:
            client.drop(f"protocol error: {exc}")
        except (anyio.BrokenResourceError, OSError) as exc:
            client.drop(f"connection error: {exc!r}")

    async def _run(self, client: _Client, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        command = HANDLERS.get(op) if isinstance(op, str) else None
        try:
            if command is None:
                raise UnknownOperationError(f"unknown command {op!r}")
            if command.operator and client.role != "operator":
                raise NotPermittedError(f"{op}: refused, this client is a viewer (read-only)")
            result = await command.handler(self._context, frame)
            reply = {"re": frame.get("req"), "ok": True, "result": result}
        except Exception as exc:
            if not isinstance(exc, SwarmdeckError):
                log.exception("control command %s failed", op)
            reply = {"re": frame.get("req"), "ok": False, "error": error_to_wire(exc)}
            if command is None or command.operator:
                self._refused(client, str(op), exc)
        client.outbox.add_fact(encode(reply))  # after every event the command caused
        if client.outbox.overflow:
            client.drop(client.outbox.overflow)

    def _refused(self, client: _Client, op: str, exc: Exception) -> None:
        code = "not-permitted" if isinstance(exc, NotPermittedError) else type(exc).__name__
        refused = CommandRefused(
            client=client.id, role=client.role, command=op, code=code, reason=str(exc)
        )
        self.engine.hub.emit(refused)

    async def _write(self, client: _Client) -> None:
        outbox, send = client.outbox, client.stream.send
        try:
            while True:
                await outbox.wait()
                facts = outbox.take_facts()
                if facts:
                    await send(facts)
                if outbox.take_stats():
                    await send(self.stats_frame())
                name = outbox.take_screen()  # one per round: facts and quiet screens go first
                frame = self.screen_frame(client, name) if name is not None else None
                if frame is not None:
                    await send(frame)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            client.drop(f"connection error: {exc!r}")


@asynccontextmanager
async def open_control_server(engine: Engine, socket_path: Path) -> AsyncIterator[ControlServer]:
    """Serve `engine` on `socket_path` (0600, parent 0700) for the block; clients are
    disconnected and the socket removed on exit. Sessions are the engine's: untouched."""
    _prepare(socket_path)
    server = ControlServer(engine, socket_path)
    quiet_cancelled_wakeups()  # a client's end may log a harmless one (engine/loop_noise.py)
    listener = await anyio.create_unix_listener(socket_path)
    os.chmod(socket_path, 0o600)
    failure: BaseException | None = None
    try:
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(
                accept_forever, listener, lambda: server.gate, server.handle, _refusal, tg
            )
            try:
                yield server
            except BaseException as exc:  # re-raised below, not wrapped in an ExceptionGroup
                failure = exc
            tg.cancel_scope.cancel()
        if failure is not None:
            raise failure
    finally:
        server.unlisten()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(socket_path)


def _refusal(reason: str) -> bytes:
    return encode({"re": 0, "ok": False, "error": error_to_wire(TooManyClientsError(reason))})


def _prepare(socket_path: Path) -> None:
    """A private directory (0700) and no stale socket from a killed server; a socket some
    live server still answers on is never taken over."""
    socket_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(socket_path.parent, 0o700)
    pid = _serving_pid(socket_path)
    if pid is not None:
        raise SwarmdeckError(f"{socket_path} is already served by pid {pid}")
    with contextlib.suppress(FileNotFoundError):
        socket_path.unlink()


def _serving_pid(socket_path: Path) -> int | None:
    """The pid of the process listening on `socket_path`; None when nothing is (stale)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(5.0)  # a live server with a full backlog still answers by then
        try:
            probe.connect(os.fspath(socket_path))
        except (FileNotFoundError, ConnectionRefusedError):
            return None
        credentials = probe.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    pid: int = _UCRED.unpack(credentials)[0]
    return pid
