"""The bus endpoint: a Unix socket (0600, in a 0700 directory) speaking line-delimited JSON,
one `Connection` (engine.bus.connection) per client; and `open_bus`, a run's whole bus.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from engine.acceptor import Gate, Ticket, accept_forever
from engine.bus.broker import MessageBus
from engine.bus.bus_errors import LimitExceededError
from engine.bus.connection import Connection
from engine.bus.frames import encode, error_frame
from engine.bus.journal import Journal
from engine.loop_noise import quiet_cancelled_wakeups

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable

    from anyio.abc import SocketStream, TaskStatus

    from engine.events import Event


log = logging.getLogger(__name__)


def socket_path(run_dir: Path) -> Path:
    """`RUN/bus/bus.sock`, or under $XDG_RUNTIME_DIR when that path is too long for AF_UNIX."""
    path = run_dir.absolute() / "bus" / "bus.sock"
    if len(os.fsencode(path)) < 100:
        return path
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/swarmdeck-{os.getuid()}")
    digest = hashlib.sha256(os.fsencode(run_dir.absolute())).hexdigest()[:16]
    return base / f"swarmdeck-{digest}" / "bus.sock"


async def serve(bus: MessageBus, path: Path, *, task_status: TaskStatus[None]) -> None:
    """Listen on `path` until cancelled; one task per connection, within `bus.limits`."""
    _clear(path)
    quiet_cancelled_wakeups()  # a connection's end may log a harmless one (loop_noise.py)
    listener = await anyio.create_unix_listener(path)
    os.chmod(path, 0o600)  # the 0700 directory already keeps others out meanwhile

    def gate() -> Gate:
        bus.gate.connections = bus.limits.connections
        bus.gate.unauthenticated = bus.limits.unauthenticated
        return bus.gate

    async def handle(stream: SocketStream, ticket: Ticket) -> None:
        await Connection(stream, bus, ticket).serve()

    def refuse(reason: str) -> bytes:
        return encode(error_frame(LimitExceededError(reason)))

    task_status.started()
    try:
        async with listener, anyio.create_task_group() as tg:
            await accept_forever(listener, gate, handle, refuse, tg)
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
    nats: str | None = None,
    **limits: Any,
) -> AsyncIterator[MessageBus]:
    """A bus for one run: journal `RUN/bus/journal.sqlite3` (recovered if it exists), its
    socket, its sweeper, and with `nats` (a deck's `bus` URL) its link to that NATS server
    (engine.bus.nats_link), up before any session can publish; all closed on exit."""
    directory = run_dir / "bus"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    journal = Journal(directory / "journal.sqlite3", synchronous)
    try:
        bus = MessageBus(sessions, emit, journal, **limits)
        bus.socket_path = socket_path(run_dir)
        async with contextlib.AsyncExitStack() as link:
            if nats is not None:  # first: its errors come unwrapped, before any socket
                from engine.bus.nats_link import open_link

                await link.enter_async_context(open_link(bus, nats, run_dir))
            async with anyio.create_task_group() as tg:
                await tg.start(serve, bus, bus.socket_path)
                tg.start_soon(bus.run)
                try:
                    yield bus
                finally:
                    tg.cancel_scope.cancel()
    finally:
        try:
            journal.close()
        except sqlite3.Error as exc:  # reported as it happened; the run is over anyway
            log.error("bus journal %s: last commit failed at close: %s", journal.path, exc)
