"""The contention model: how many sessions want a slot, how long they wait, how fast they go.

One model for the whole run (docs/contention.md gives the formulas). Sessions queue in the
scheduler, never in the pool (`max_parallel` ≤ pool size), so the figures are taken where
the waiting happens: slots are `max_parallel`, a waiting session is one that is ready
(dependencies met, no backoff pending) but not started. Every time is the session's own
wall-clock timestamp (ready_at, started_at, ended_at), so a viewer can recompute each
figure from summary.json. Queue waits include the sessions still waiting (their wait so
far): a queue that never moves shows, it does not hide until the sessions finish.

`Contention` records starts and finishes as they happen; `statistics()` is a cheap read
that returns a frozen `ContentionStatistics`, sampled once a second as `ContentionSampled`.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.metrics import percentile
from engine.statistics import ContentionStatistics

if TYPE_CHECKING:
    from collections.abc import Iterable

WINDOW = 30.0
HISTORY = 180  # samples (one a second) a viewer keeps for sparklines: the last 3 minutes


@dataclass(frozen=True)
class _Start:
    ready_at: float
    started_at: float
    waited: bool


class Contention:
    """What `statistics()` needs, recorded when it happens (each call is O(window))."""

    def __init__(self, window: float = WINDOW) -> None:
        self.window = window
        self.since = time.time()
        self._starts: deque[_Start] = deque()
        self._ends: deque[float] = deque()
        self._bus: deque[tuple[float, int]] = deque()

    def begin(self, at: float | None = None) -> None:
        """The run starts now: rates are over min(window, time since then)."""
        self.since = time.time() if at is None else at

    def started(self, ready_at: float, started_at: float, waited: bool) -> None:
        self._starts.append(_Start(ready_at, started_at, waited))

    def ended(self, ended_at: float) -> None:
        self._ends.append(ended_at)

    def bus_counted(self, routed: int, at: float | None = None) -> None:
        """A reading of the bus's messages-routed counter (the sampler takes one a second)."""
        self._bus.append((time.time() if at is None else at, routed))

    def statistics(
        self,
        running: int,
        waiting_since: Iterable[float],
        slots: int,
        target: int,
        reason: str,
        at: float | None = None,
    ) -> ContentionStatistics:
        """`waiting_since`: the ready_at of every session ready but not started."""
        now = time.time() if at is None else at
        start = now - self.window
        self._trim(start)
        ready = list(waiting_since)
        starts = [s for s in self._starts if start < s.started_at <= now]
        waits = [s.started_at - s.ready_at for s in starts] + [now - r for r in ready]
        span = max(min(self.window, now - self.since), 1e-3)
        ended = sum(1 for t in self._ends if start < t <= now)
        waited = sum(s.waited for s in starts)
        return ContentionStatistics(
            at=now,
            window=self.window,
            since=self.since,
            slots=slots,
            target_parallel=target,
            parallel_reason=reason,
            running=running,
            waiting=len(ready),
            demand=running + len(ready),
            utilisation=running / slots if slots else 0.0,
            saturation=len(ready) / slots if slots else 0.0,
            wait_p50=percentile(waits, 0.50),
            wait_p95=percentile(waits, 0.95),
            wait_max=max(waits, default=0.0),
            throughput=ended / span,
            bus_rate=self._bus_rate(start, now),
            bus_routed=self._bus[-1][1] if self._bus else 0,
            contention_rate=waited / len(starts) if starts else 0.0,
            starts=len(starts),
            waited=waited,
        )

    def _bus_rate(self, start: float, now: float) -> float:
        inside = [(t, n) for t, n in self._bus if start <= t <= now]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return 0.0
        (t0, n0), (t1, n1) = inside[0], inside[-1]
        return (n1 - n0) / (t1 - t0)

    def _trim(self, start: float) -> None:
        """Forget what left the window (a start or end recorded late stays until then)."""
        while self._starts and self._starts[0].started_at <= start - self.window:
            self._starts.popleft()
        while self._ends and self._ends[0] <= start - self.window:
            self._ends.popleft()
        while len(self._bus) > 1 and self._bus[1][0] <= start:
            self._bus.popleft()
