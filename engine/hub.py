"""Fan-out of engine events to any number of subscribers, never blocking the engine.

Facts (state changes, finished runs) are never dropped. Screen changes (already limited
to ~30 per second per session by the engine, engine/engine.py) and samples are skipped for a
subscriber that already has a backlog: they only say "there is something newer", so the
next one supersedes them; but never the interactive session's screen change (the one an
operator types into: `interactive`), which would otherwise wait for that session's next
change. Listeners (`listen`) see every event synchronously, in order.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import anyio

from engine.events import Event, PoolSampled, SchedulerSampled, ScreenChanged

if TYPE_CHECKING:
    from collections.abc import Callable

    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream


_COALESCABLE = (ScreenChanged, PoolSampled, SchedulerSampled)


def _never(session: str) -> bool:
    return False


class EventHub:
    def __init__(self, backlog: int = 1000, interactive: Callable[[str], bool] = _never) -> None:
        self._backlog = backlog
        self.interactive = interactive  # the engine sets its own (Engine.interactive)
        self._subscribers: list[MemoryObjectSendStream[Event]] = []
        self._listeners: list[Callable[[Event], None]] = []
        self.skipped = 0

    def listen(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call `callback` synchronously inside every emit; returns the way to stop.

        For fan-out that must keep the engine's order exactly (the control server queues a
        command's reply after the events it caused). A stream cannot promise that: an
        event handed to an already-waiting receiver is not yet processed when the emitter
        resumes. Callbacks must be quick and must not raise.
        """
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def subscribe(self) -> MemoryObjectReceiveStream[Event]:
        """A new stream of every event from now on; close it to unsubscribe."""
        send, receive = anyio.create_memory_object_stream[Event](max_buffer_size=math.inf)
        self._subscribers.append(send)
        return receive

    def emit(self, event: Event) -> None:
        for listener in list(self._listeners):
            listener(event)
        coalescable = isinstance(event, _COALESCABLE)
        if isinstance(event, ScreenChanged) and self.interactive(event.session):
            coalescable = False
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
