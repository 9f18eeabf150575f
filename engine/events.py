"""Typed, serialisable facts the engine publishes; past-tense names.

Every event is a pydantic model with a `kind` discriminator, so the same stream works
in-process and over a socket (`Event` parses any of them).

Size: a catalogue of small models, one per kind of fact; no logic.
"""

from __future__ import annotations

import time
import typing
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.states import SessionState  # noqa: TC001 (pydantic needs it at runtime)
from engine.statistics import (  # noqa: TC001 (pydantic needs them at runtime)
    ContentionStatistics,
    PoolStatistics,
    SchedulerStatistics,
)


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True)
    at: float = Field(default_factory=time.time)


class SessionStateChanged(_Event):
    """A session moved from one state to another (one event per transition)."""

    kind: Literal["session-state-changed"] = "session-state-changed"
    session: str
    old: SessionState | None
    new: SessionState
    reason: str = ""
    pid: int | None = None
    exit_code: int | None = None
    signal: int | None = None


class SessionDetailChanged(_Event):
    """What a live session is doing, beyond its state, changed: a service passed its
    `ready` probe ("ready"), a job was stopped by the terminal ("stopped (tty output)"),
    or that ended (""). Not a transition: the state is unchanged."""

    kind: Literal["session-detail-changed"] = "session-detail-changed"
    session: str
    detail: str


class SessionAdded(_Event):
    """A session was created at run time (a fork); `spec` is its SessionSpec as plain
    JSON data, so every attached room and viewer knows it as fully as the deck's own
    sessions (and can fork it in turn). Emitted before any state change of the session."""

    kind: Literal["session-added"] = "session-added"
    session: str
    template: str
    reason: str
    spec: dict[str, Any]


class AttentionChanged(_Event):
    """A session started or stopped waiting for the operator (docs/attention.md).
    `reason`: idle (quiet at a prompt), bell, notify (OSC 9 / 777) or bus (it published
    on the topic `attention`); "" when the mark cleared. `since` is when it was marked
    (None once cleared), `text` what a notification or bus message said."""

    kind: Literal["attention-changed"] = "attention-changed"
    session: str
    reason: str
    since: float | None = None
    text: str = ""


class ScreenChanged(_Event):
    """A session's screen has new content up to `revision` (coalesced, ~30 per second)."""

    kind: Literal["screen-changed"] = "screen-changed"
    session: str
    revision: int


class PoolSampled(_Event):
    """A once-a-second sample of the pool's statistics."""

    kind: Literal["pool-sampled"] = "pool-sampled"
    stats: PoolStatistics


class TerminalRecycled(_Event):
    """A terminal was replaced; `reason` says why (leases, unhealthy, idle)."""

    kind: Literal["terminal-recycled"] = "terminal-recycled"
    terminal: int
    reason: str


class RunFinished(_Event):
    """Every session reached a final state (again, after a restart or fork), or the engine
    stopped; summary.json has just been written. `outcome` is the verdict's (succeeded,
    partial, failed, aborted, halted, stopped), `succeeded` of `total` sessions completed."""

    kind: Literal["run-finished"] = "run-finished"
    ok: bool
    summary_path: str
    outcome: str = ""
    reason: str = ""
    succeeded: int = 0
    total: int = 0


class ParallelismAdjusted(_Event):
    """`max_parallel = "auto"` moved the concurrency limit; `reason` gives the figures."""

    kind: Literal["parallelism-adjusted"] = "parallelism-adjusted"
    old: int
    new: int
    reason: str


class RunAborted(_Event):
    """The scheduler stopped starting sessions: a critical session failed (running ones are
    terminated) or the failure rate crossed max_failure_rate (running ones finish)."""

    kind: Literal["run-aborted"] = "run-aborted"
    reason: str
    terminated_running: bool


class SchedulerSampled(_Event):
    """A once-a-second sample of the scheduler's statistics."""

    kind: Literal["scheduler-sampled"] = "scheduler-sampled"
    stats: SchedulerStatistics


class ContentionSampled(_Event):
    """A once-a-second sample of the contention model (docs/contention.md): slots,
    running, waiting, queue waits (still-waiting sessions included), throughput, bus rate,
    contention rate, and max_parallel with the reason for its value."""

    kind: Literal["contention-sampled"] = "contention-sampled"
    stats: ContentionStatistics


class AlertRaised(_Event):
    """A figure crossed a threshold of the deck's [alerts] table (said once, until it
    clears); `subject` is run, bus, machine or a session's name (engine/alerts.py)."""

    kind: Literal["alert-raised"] = "alert-raised"
    alert: str
    subject: str
    value: float
    threshold: float
    text: str


class AlertCleared(_Event):
    """A raised alert's figure came back within its threshold."""

    kind: Literal["alert-cleared"] = "alert-cleared"
    alert: str
    subject: str
    text: str


class BusMessageRouted(_Event):
    """A message reached the bus and was placed in `mailboxes` mailboxes (0: nobody listens)."""

    kind: Literal["bus-message-routed"] = "bus-message-routed"
    id: str
    route: str
    target: str
    sender: str
    reliable: bool
    priority: str
    mailboxes: int


class BusMessageAcked(_Event):
    """A receiver acknowledged a reliable message; it is no longer owed."""

    kind: Literal["bus-message-acked"] = "bus-message-acked"
    id: str
    session: str
    mailbox: str


class BusMessageRedelivered(_Event):
    """A reliable message is owed again (`reason`: ack-timeout, nack, replay: a dead letter
    put back, restart: journalled before the engine restarted); `attempt` is the number of
    its next delivery."""

    kind: Literal["bus-message-redelivered"] = "bus-message-redelivered"
    id: str
    mailbox: str
    attempt: int
    reason: str


class BusMessageExpired(_Event):
    """A message outlived its ttl before it was delivered or acked."""

    kind: Literal["bus-message-expired"] = "bus-message-expired"
    id: str
    mailbox: str
    reliable: bool


class BusMessageDropped(_Event):
    """A message was discarded (`reason`: overflow or unsubscribed, for best-effort ones;
    dlq-full, for the oldest dead letter evicted by a new one)."""

    kind: Literal["bus-message-dropped"] = "bus-message-dropped"
    id: str
    mailbox: str
    reason: str


class BusMessageDeadLettered(_Event):
    """A reliable message moved to the dead-letter queue (`reason`: max-attempts, expired,
    rejected: a nack without requeue)."""

    kind: Literal["bus-message-dead-lettered"] = "bus-message-dead-lettered"
    id: str
    mailbox: str
    reason: str
    attempts: int


class BusRequestRefused(_Event):
    """The bus refused a command: bad token, ACL, full queue, bad frame (`code` says which)."""

    kind: Literal["bus-request-refused"] = "bus-request-refused"
    session: str | None
    op: str
    code: str
    reason: str


class BusJournalFailed(_Event):
    """The bus journal could not be written (full disk, read-only file): the frames of that
    batch were refused with `journal-failed`, nothing unjournalled was acknowledged, the
    engine carries on. At most one a second; `failures` counts them all."""

    kind: Literal["bus-journal-failed"] = "bus-journal-failed"
    path: str
    error: str
    failures: int


class ClientAttached(_Event):
    """A client attached to the control socket (`client` is its id for this engine)."""

    kind: Literal["client-attached"] = "client-attached"
    client: int
    role: str
    name: str


class ClientDetached(_Event):
    """A client left or was dropped (`reason`: closed, backlog, protocol error...)."""

    kind: Literal["client-detached"] = "client-detached"
    client: int
    reason: str


class CommandRefused(_Event):
    """The control socket refused a client's command (`code`: not-permitted for a viewer's
    control or input, or the engine error's class name)."""

    kind: Literal["command-refused"] = "command-refused"
    client: int
    role: str
    command: str
    code: str
    reason: str


class BusTrafficSampled(_Event):
    """The bus's traffic over the last `interval` seconds (about four per second while
    messages flow): how many messages were routed, acked, redelivered, expired, dropped,
    dead-lettered and refused, and how many of those had no event of their own
    (`unreported`: per-message events are budgeted, see engine/bus/traffic.py), with the
    busiest topics (messages routed per topic in the interval)."""

    kind: Literal["bus-traffic-sampled"] = "bus-traffic-sampled"
    interval: float
    routed: int
    acked: int
    redelivered: int
    expired: int
    dropped: int
    dead_lettered: int
    refused: int
    unreported: dict[str, int]
    topics: dict[str, int]


BusEvent = (
    BusMessageRouted
    | BusMessageAcked
    | BusMessageRedelivered
    | BusMessageExpired
    | BusMessageDropped
    | BusMessageDeadLettered
    | BusRequestRefused
    | BusJournalFailed
    | BusTrafficSampled
)
BUS_EVENTS: tuple[type[_Event], ...] = typing.get_args(BusEvent)


def is_bus_event(event: object) -> typing.TypeGuard[BusEvent]:
    return isinstance(event, BUS_EVENTS)


Event = Annotated[
    SessionStateChanged
    | SessionDetailChanged
    | SessionAdded
    | AttentionChanged
    | ScreenChanged
    | PoolSampled
    | TerminalRecycled
    | RunFinished
    | ParallelismAdjusted
    | RunAborted
    | SchedulerSampled
    | ContentionSampled
    | AlertRaised
    | AlertCleared
    | ClientAttached
    | ClientDetached
    | CommandRefused
    | BusEvent,
    Field(discriminator="kind"),
]
