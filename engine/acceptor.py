"""Accepting socket connections without letting clients take the engine down.

Both servers (the bus and the control socket) accept through `accept_forever`: a client
over the caps of its `Gate` (open connections in all, and connections that have not said
hello yet) is told why in one frame and closed at once, so a flood of idle connections can
never reach the process's file limit; and when accepting fails for lack of resources
(EMFILE, ENFILE, ENOBUFS, ENOMEM: descriptors taken by sessions or by the clients already
in) the loop backs off and tries again, as servers do, instead of raising out of the
engine. The hello deadline itself is each protocol's: the gate only counts.
"""

from __future__ import annotations

import contextlib
import errno
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
from anyio.abc import SocketAttribute

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from anyio.abc import SocketListener, SocketStream, TaskGroup

log = logging.getLogger(__name__)
_SCARCE = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_BACKOFF = (0.01, 0.5)  # first and longest pause after a failed accept, in seconds


@dataclass(slots=True)
class Gate:
    """Open connections and those still owing their hello, against their caps."""

    connections: int
    unauthenticated: int
    open: int = 0
    waiting: int = 0
    refused: int = 0
    accept_failures: int = 0

    def refusal(self) -> str | None:
        """Why one more connection must be turned away now, or None."""
        if self.open >= self.connections:
            return f"too many connections ({self.connections} open); try again later"
        if self.waiting >= self.unauthenticated:
            return (
                f"too many connections waiting for their hello ({self.unauthenticated}); "
                "try again later"
            )
        return None

    def admit(self) -> Ticket:
        self.open += 1
        self.waiting += 1
        return Ticket(self)


class Ticket:
    """One admitted connection's place in its gate."""

    __slots__ = ("_gate", "_waiting")

    def __init__(self, gate: Gate) -> None:
        self._gate = gate
        self._waiting = True

    def hello(self) -> None:
        """The client said hello: it stops counting against `unauthenticated`."""
        if self._waiting:
            self._waiting = False
            self._gate.waiting -= 1

    def close(self) -> None:
        self.hello()
        self._gate.open -= 1


async def accept_forever(
    listener: SocketListener,
    gate: Callable[[], Gate],
    handle: Callable[[SocketStream, Ticket], Awaitable[None]],
    refuse: Callable[[str], bytes],
    tg: TaskGroup,
) -> None:
    """Accept until cancelled; `handle` owns each admitted stream, `refuse(reason)` is the
    frame a refused client gets. `gate` is read per accept, so limits may change live."""
    pause = _BACKOFF[0]
    while True:
        try:
            stream = await listener.accept()
        except (OSError, anyio.BrokenResourceError) as exc:
            cause = exc if isinstance(exc, OSError) else exc.__cause__  # anyio wraps it
            if not isinstance(cause, OSError) or cause.errno not in _SCARCE:
                raise
            current = gate()
            current.accept_failures += 1
            if current.accept_failures in (1, 10, 100) or current.accept_failures % 1000 == 0:
                log.warning("accept failed (%s); retrying in %.2f s", cause, pause)
            await anyio.sleep(pause)
            pause = min(pause * 2, _BACKOFF[1])
            continue
        pause = _BACKOFF[0]
        current = gate()
        reason = current.refusal()
        if reason is not None:
            current.refused += 1
            _turn_away(stream, refuse(reason))
            await stream.aclose()
            continue
        tg.start_soon(_served, stream, current.admit(), handle)


async def _served(
    stream: SocketStream, ticket: Ticket, handle: Callable[[SocketStream, Ticket], Awaitable[None]]
) -> None:
    try:
        await handle(stream, ticket)
    finally:
        ticket.close()
        with contextlib.suppress(Exception):
            await stream.aclose()


def _turn_away(stream: SocketStream, frame: bytes) -> None:
    """One best-effort, non-blocking write: a refused client never holds the loop."""
    raw = stream.extra(SocketAttribute.raw_socket)
    with contextlib.suppress(OSError):
        raw.send(frame)
