"""In-process consumers: a one-shot waiter (pop, recv) and a streaming subscription.

Both follow the `Consumer` protocol of `engine.bus.queues`: the bus hands them an entry only
while they have credit, so a slow consumer holds at most its window and the rest waits in
its mailbox, where the overflow policy applies, never blocking the publisher.
"""

from __future__ import annotations

from collections import deque
from operator import attrgetter
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from collections.abc import Callable

    from engine.bus.broker import MessageBus
    from engine.bus.message import Message
    from engine.bus.queues import Entry, Mailbox

_message = attrgetter("message")
_reliable = attrgetter("reliable")


class Waiter:
    """Takes exactly one entry, then detaches itself."""

    ack_window = False

    def __init__(self, session: str, mailbox: Mailbox) -> None:
        self.session = session
        self.credit = 1
        self.entry: Entry | None = None
        self.event = anyio.Event()
        self._mailbox = mailbox

    def deliver(self, entry: Entry) -> None:
        self.entry = entry
        self._mailbox.remove_consumer(self)
        self.event.set()


class LocalSubscription:
    """An async iterator of messages for the operator (the UI's bus panel, benchmarks).

    Best-effort messages return their credit when read; reliable ones when acked
    (`ack(message)`), so `window` bounds how many unacked messages it can hold. While awake,
    `deliver` is the bare `deque.append` (the bus's fan-out calls it per message); only a
    sleeping `get` swaps in a callable that also wakes it.
    """

    ack_window = True

    def __init__(self, bus: MessageBus, session: str, mailbox: Mailbox, window: int) -> None:
        self.session = session
        self.credit = window
        self._bus = bus
        self._mailbox = mailbox
        self._ready: deque[Entry] = deque()
        self.deliver: Callable[[Entry], None] = self._ready.append
        self._wakeup = anyio.Event()

    def get_nowait(self) -> Message | None:
        if not self._ready:
            return None
        entry = self._ready.popleft()
        if not entry.message.reliable:
            self.credit += 1
            if self._mailbox.heap:
                self._bus.pump(self._mailbox)
        return entry.message

    def drain_nowait(self) -> list[Message]:
        """Every message delivered so far, at once (cheaper than `get_nowait` in a loop)."""
        messages = list(map(_message, self._ready))
        self._ready.clear()
        best_effort = len(messages) - sum(map(_reliable, messages))
        if best_effort:
            self.credit += best_effort
            if self._mailbox.heap:
                self._bus.pump(self._mailbox)
        return messages

    async def get(self) -> Message:
        while (message := self.get_nowait()) is None:
            self._wakeup = anyio.Event()
            self.deliver = self._wake
            try:
                await self._wakeup.wait()
            finally:
                self.deliver = self._ready.append
        return message

    def _wake(self, entry: Entry) -> None:
        self._ready.append(entry)
        self._wakeup.set()

    def ack(self, message: Message) -> None:
        self._bus.ack(self.session, message.id)

    def __aiter__(self) -> LocalSubscription:
        return self

    async def __anext__(self) -> Message:
        return await self.get()

    def close(self) -> None:
        self._bus.detach(self._mailbox, self)

    def __enter__(self) -> LocalSubscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
