"""The statistics records the pool, the scheduler and the contention model take (frozen
snapshots built with keywords), kept at the base so sample events carry them as they are
(`PoolSampled.stats` …) and the wire, the room and summary.json read one field list.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PoolStatistics:
    """A snapshot; utilisation = in_use/capacity, saturation = waiters/capacity,
    contention = share of leases that waited for a terminal or a slot (docs/contention.md:
    the scheduler admits at most the pool size, so waits here are terminal start-up)."""

    capacity: int
    size: int
    in_use: int
    idle: int
    starting: int
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


@dataclass(frozen=True)
class SchedulerStatistics:
    """A snapshot. queued counts every unstarted session (ready + waiting on a dependency +
    backing off before a retry); throughput is finished attempts per second over the last
    30 s; queue waits run from ready to started."""

    max_parallel: int
    queued: int
    ready: int
    waiting_on_dependency: int
    backing_off: int
    running: int
    completed: int
    failed: int
    terminated: int
    skipped: int
    retried: int
    throughput: float
    queue_wait_mean: float
    queue_wait_p95: float
    memory_in_use: int
    memory_budget: int | None
    lost: int = 0
    """Of `failed`, the sessions whose host dropped (state lost, docs/hosts.md)."""


@dataclass(frozen=True)
class ContentionStatistics:
    """A snapshot at `at` (Unix seconds) over the last `window` seconds (see the module
    docstring; formulas in docs/contention.md)."""

    at: float
    window: float
    since: float  # the run's start: rates are over min(window, at - since)
    slots: int  # max_parallel in force
    target_parallel: int  # where max_parallel is going (auto's choice or the operator's)
    parallel_reason: str  # why max_parallel has its value
    running: int  # holding a slot: admitted, process not yet ended
    waiting: int  # ready but not started (followers included)
    demand: int  # running + waiting
    utilisation: float  # running / slots
    saturation: float  # waiting / slots
    wait_p50: float  # queue waits in the window, the still-waiting ones included
    wait_p95: float
    wait_max: float
    throughput: float  # attempts ended per second
    bus_rate: float  # bus messages routed per second, between the window's counter readings
    bus_routed: int  # the last reading of the bus's messages-routed counter
    contention_rate: float  # share of the window's starts that had to wait for a slot
    starts: int  # starts in the window
    waited: int  # of which had to wait


@dataclass(frozen=True)
class HostStatistics:
    """One [[host]]'s connection (engine/terminals/hosts/host_link.py): whether it is up,
    channels open on it (of max_channels), the last round trip of a `true` exec (None:
    not measured yet), connections made, failed attempts and drops; its slots
    (engine/terminals/hosts/host_registry.py): how many sessions it runs at once, and now;
    and why its sessions have no bus (its sshd refused to forward the bus socket), if they
    have not."""

    host: str
    connected: bool
    channels: int
    max_channels: int
    rtt: float | None
    connects: int
    failures: int
    drops: int
    last_error: str | None
    slots: int = 0
    """Sessions it may run at once (its pool.size; added in protocol v6, hence defaults)."""
    slots_in_use: int = 0
    """Of those, taken by sessions now (docs/scheduling.md, "Places")."""
    bus_problem: str | None = None
    """engine/terminals/hosts/bus_forward.py (protocol v7)."""
    warm_problem: str | None = None
    """Why its sessions run in fresh terminals only (engine/terminals/hosts/host_pool.py)."""
