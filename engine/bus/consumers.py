"""In-process consumers: a one-shot waiter (pop, recv) and a streaming subscription.

Both follow the `Consumer` protocol of `engine.bus.queues`: the bus hands them an entry only
while they have credit, so a slow consumer holds at most its window and the rest waits in
its mailbox, where the overflow policy applies, never blocking the publisher.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from engine.bus.broker import MessageBus
    from engine.bus.message import Message
    from engine.bus.queues import Entry, Mailbox


class Waiter:
    """Takes exactly one entry, then detaches itself."""

    ack_window = False

    def __init__(self, session: str) -> None:
        self.session = session
        self.credit = 1
        self.entry: Entry | None = None
        self.event = anyio.Event()

    def deliver(self, entry: Entry, mailbox: Mailbox) -> None:
        self.entry = entry
        mailbox.consumers.remove(self)
        self.event.set()


class LocalSubscription:
    """An async iterator of messages for the operator (the UI's bus panel, benchmarks).

    Best-effort messages return their credit when read; reliable ones when acked
    (`ack(message)`), so `window` bounds how many unacked messages it can hold.
    """

    ack_window = True

    def __init__(self, bus: MessageBus, session: str, mailbox: Mailbox, window: int) -> None:
        self.session = session
        self.credit = window
        self._bus = bus
        self._mailbox = mailbox
        self._ready: deque[Entry] = deque()
        self._wakeup = anyio.Event()

    def deliver(self, entry: Entry, mailbox: Mailbox) -> None:
        self._ready.append(entry)
        if not self._wakeup.is_set():
            self._wakeup.set()

    def get_nowait(self) -> Message | None:
        if not self._ready:
            return None
        entry = self._ready.popleft()
        if not entry.message.reliable:
            self.credit += 1
            if len(self._mailbox):
                self._bus.pump(self._mailbox)
        return entry.message

    async def get(self) -> Message:
        while (message := self.get_nowait()) is None:
            self._wakeup = anyio.Event()
            await self._wakeup.wait()
        return message

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
