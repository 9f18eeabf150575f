"""Typed, serialisable facts the engine publishes; past-tense names.

Every event is a pydantic model with a `kind` discriminator, so the same stream works
in-process and over a socket (`Event` parses any of them).
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.states import SessionState  # noqa: TC001 (pydantic needs it at runtime)


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


class ScreenChanged(_Event):
    """A session's screen has new content up to `revision` (coalesced, ~30 per second)."""

    kind: Literal["screen-changed"] = "screen-changed"
    session: str
    revision: int


class PoolSampled(_Event):
    """A periodic sample of the pool's statistics."""

    kind: Literal["pool-sampled"] = "pool-sampled"
    capacity: int
    size: int
    in_use: int
    idle: int
    waiters: int
    leases: int
    created: int
    recycled: int
    wait_p50: float
    wait_p95: float
    wait_p99: float
    utilisation: float
    saturation: float
    contention: float


class TerminalRecycled(_Event):
    """A terminal was replaced; `reason` says why (leases, unhealthy, idle)."""

    kind: Literal["terminal-recycled"] = "terminal-recycled"
    terminal: int
    reason: str


class RunFinished(_Event):
    """Every session reached a final state (or the run was stopped)."""

    kind: Literal["run-finished"] = "run-finished"
    ok: bool
    summary_path: str


Event = Annotated[
    SessionStateChanged | ScreenChanged | PoolSampled | TerminalRecycled | RunFinished,
    Field(discriminator="kind"),
]
