"""A subscription streamed to a socket connection, within the connection's byte budget.

Best-effort credit comes back when the writer has handed the bytes to the socket, so
`window` bounds how many messages one subscription can pile up in the connection's buffer;
`BusLimits.outbox` bounds their bytes. Past that budget (a consumer that stopped reading)
a delivery is not buffered: a best-effort one is dropped, counted in the bus's drops and
announced to the client once the connection drains (`{"sub": N, "dropped": K}`); a
reliable one stays in flight and journalled, and comes back after its ack timeout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from engine.bus.broker import MessageBus
    from engine.bus.queues import Entry, Mailbox


class Outlet(Protocol):
    """What a subscription needs of its connection."""

    session: str
    bus: MessageBus

    def push(self, data: bytes) -> None: ...
    def over_budget(self) -> bool: ...


class SocketSubscription:
    """`count` ends it after that many messages."""

    ack_window = True

    def __init__(self, conn: Outlet, sub: int, box: Mailbox, window: int, count: int | None):
        self.session = conn.session
        self.credit = window if count is None else min(window, count)
        self.box = box
        self.unflushed = 0
        self.dropped = 0
        """Best-effort deliveries dropped since the last notice to the client."""
        self._conn = conn
        self._push = conn.push
        self._heads = [b'{"sub":%d,"attempt":%d,"msg":' % (sub, n) for n in range(8)]
        self._sub = sub
        self._remaining = count

    def deliver(self, entry: Entry) -> None:
        message = entry.message
        if not message.reliable:
            self.unflushed += 1  # its credit comes back after the next write, sent or not
        if self._conn.over_budget():
            if not message.reliable:
                self.dropped += 1
                self._conn.bus.reliability.drop(entry, self.box, "slow-consumer")
            return  # reliable: in flight, journalled; redelivered after its ack timeout
        attempt = entry.attempt
        head = self._heads[attempt] if attempt < 8 else b'{"sub":%d,"attempt":%d,"msg":' % (
            self._sub, attempt)  # fmt: skip
        self._push(head + message.wire() + b"}\n")
        if self._remaining is not None:
            self._remaining -= 1
            if self._remaining == 0:
                self.credit = -(1 << 30)  # finished: credit given back later stays negative

    def notice(self) -> bytes | None:
        """The drop notice owed to the client, if any (then reset)."""
        if not self.dropped:
            return None
        dropped, self.dropped = self.dropped, 0
        return b'{"sub":%d,"dropped":%d}\n' % (self._sub, dropped)
