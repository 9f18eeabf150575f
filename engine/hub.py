"""Fan-out of engine events to any number of subscribers, never blocking the engine.

Facts (state changes, finished runs) are never dropped. Screen changes are coalesced per
session by a frame ticker (at most ~30 per second per session) and, like pool samples, are
skipped for a subscriber that already has a backlog: they only say "there is something
newer", so the next one supersedes them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import anyio

from engine.events import Event, PoolSampled, SchedulerSampled, ScreenChanged

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream


_COALESCABLE = (ScreenChanged, PoolSampled, SchedulerSampled)


class EventHub:
    def __init__(self, backlog: int = 1000) -> None:
        self._backlog = backlog
        self._subscribers: list[MemoryObjectSendStream[Event]] = []
        self.skipped = 0

    def subscribe(self) -> MemoryObjectReceiveStream[Event]:
        """A new stream of every event from now on; close it to unsubscribe."""
        send, receive = anyio.create_memory_object_stream[Event](max_buffer_size=math.inf)
        self._subscribers.append(send)
        return receive

    def emit(self, event: Event) -> None:
        coalescable = isinstance(event, _COALESCABLE)
        for send in list(self._subscribers):
            if coalescable and send.statistics().current_buffer_used >= self._backlog:
                self.skipped += 1
                continue
            try:
                send.send_nowait(event)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._subscribers.remove(send)
                send.close()

    def close(self) -> None:
        for send in self._subscribers:
            send.close()
        self._subscribers.clear()
