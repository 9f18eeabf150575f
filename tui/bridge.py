"""The one worker that turns the engine's event stream into Textual messages.

Screen and pool updates arrive faster than frames; their messages `can_replace` an
unprocessed predecessor, so a busy app handles the newest only. State changes and bus
traffic are facts that must each be shown, so they are never coalesced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

from engine import (
    AlertCleared,
    AlertRaised,
    AttentionChanged,
    ContentionSampled,
    ParallelismAdjusted,
    PoolSampled,
    RunFinished,
    ScreenChanged,
    SessionDetailChanged,
    SessionStateChanged,
    is_bus_event,
)

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectReceiveStream
    from textual.message_pump import MessagePump

    from engine import BusEvent, Event


class SessionUpdated(Message):
    """A session changed state (one message per transition) or detail ("ready")."""

    def __init__(self, event: SessionStateChanged | SessionDetailChanged) -> None:
        super().__init__()
        self.event = event


class AttentionUpdated(Message):
    """A session started or stopped waiting for the operator (a fact: never coalesced)."""

    def __init__(self, event: AttentionChanged) -> None:
        super().__init__()
        self.event = event


class ScreenUpdated(Message):
    """A session's screen has new content; only the newest per session matters."""

    def __init__(self, session: str) -> None:
        super().__init__()
        self.session = session

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ScreenUpdated) and message.session == self.session


class PoolUpdated(Message):
    """A new pool sample; replaces an older one still queued."""

    def __init__(self, sample: PoolSampled) -> None:
        super().__init__()
        self.sample = sample

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, PoolUpdated)


class ContentionUpdated(Message):
    """A new contention sample; each is kept for the sparklines, so none is replaced."""

    def __init__(self, sample: ContentionSampled) -> None:
        super().__init__()
        self.sample = sample


class ParallelismChanged(Message):
    """max_parallel moved (auto, or an operator): said once, with the reason."""

    def __init__(self, event: ParallelismAdjusted) -> None:
        super().__init__()
        self.event = event


class AlertObserved(Message):
    """An alert was raised or cleared (a fact: never coalesced)."""

    def __init__(self, event: AlertRaised | AlertCleared) -> None:
        super().__init__()
        self.event = event


class BusObserved(Message):
    """A bus event, typed as the engine made it (engine/events.py `BusEvent`)."""

    def __init__(self, event: BusEvent) -> None:
        super().__init__()
        self.event = event


class RunEnded(Message):
    """The run came to rest (every session final) or the engine stopped: the verdict."""

    def __init__(self, event: RunFinished) -> None:
        super().__init__()
        self.event = event
        self.ok = event.ok
        self.summary_path = event.summary_path

    @property
    def text(self) -> str:
        """`run over: failed — 1 of 3 sessions did not complete (2/3 completed)`."""
        e = self.event
        counts = f" ({e.succeeded}/{e.total} completed)" if e.total else ""
        return f"run over: {e.outcome or ('succeeded' if e.ok else 'failed')} — {e.reason}{counts}"


class StreamEnded(Message):
    """The engine's event stream ended: an attached engine stopped or dropped us."""


def translate(event: object) -> Message | None:
    """The message for one engine event, or None for events the UI does not show."""
    if isinstance(event, ScreenChanged):
        return ScreenUpdated(event.session)
    if isinstance(event, SessionStateChanged | SessionDetailChanged):
        return SessionUpdated(event)
    if isinstance(event, AttentionChanged):
        return AttentionUpdated(event)
    if isinstance(event, PoolSampled):
        return PoolUpdated(event)
    if isinstance(event, AlertRaised | AlertCleared):
        return AlertObserved(event)
    if isinstance(event, ContentionSampled):
        return ContentionUpdated(event)
    if isinstance(event, ParallelismAdjusted):
        return ParallelismChanged(event)
    if isinstance(event, RunFinished):
        return RunEnded(event)
    if is_bus_event(event):
        return BusObserved(event)
    return None


async def forward_events(events: MemoryObjectReceiveStream[Event], target: MessagePump) -> None:
    """Run for the app's lifetime: every engine event becomes at most one message.

    The caller subscribes *before* it reads the engine's state, so nothing that happens
    between that snapshot and this worker's start is lost.
    """
    with events:
        async for event in events:
            message = translate(event)
            if message is not None:
                target.post_message(message)
    target.post_message(StreamEnded())
