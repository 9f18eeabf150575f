"""The engine's once-a-second sampler: pool, scheduler and contention samples as events,
the contention history viewers draw sparklines from, the alert check on each sample, and
the look at job control that tells an active session stopped by a tty access.

Alert figures that no statistics record holds are gathered here: when each session last
printed (`output_seen`, called for every screen change), the machine's available memory,
the bus's dead-letter counter.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

import anyio

from engine.alerts import Figures
from engine.events import ContentionSampled, PoolSampled, SchedulerSampled
from engine.scheduling.contention import HISTORY
from engine.scheduling.machine import available_memory
from engine.states import SessionState
from engine.terminals.procs import tty_stops

if TYPE_CHECKING:
    from collections.abc import Callable

    from engine.alerts import Alerts
    from engine.bus.broker import MessageBus
    from engine.events import Event
    from engine.scheduling.scheduler import Scheduler
    from engine.terminals.pool import TerminalPool

SAMPLE_EVERY = 1.0
STOP_SILENCE = 1.0
"""Seconds without output after which an active session is looked at for a tty stop."""


class Sampler:
    def __init__(
        self,
        scheduler: Scheduler,
        pool: TerminalPool,
        bus: MessageBus,
        alerts: Alerts,
        emit: Callable[[Event], None],
    ) -> None:
        self._scheduler, self._pool, self._bus, self._alerts = scheduler, pool, bus, alerts
        self._emit = emit
        self.history: deque[ContentionSampled] = deque(maxlen=HISTORY)
        self._last_output: dict[str, float] = {}

    def output_seen(self, name: str, now: float) -> None:
        """Session `name` printed at `now` (monotonic)."""
        self._last_output[name] = now

    async def run(self) -> None:
        while True:
            self.sample()
            await self.look_for_tty_stops()
            await anyio.sleep(SAMPLE_EVERY)

    async def look_for_tty_stops(self) -> None:
        """Tell active sessions whether job control stopped part of their job. Only one
        silent for STOP_SILENCE can be (a stopped job prints nothing), and the /proc scan
        (~4 ms per 100 processes) runs in a worker thread, off the event loop."""
        now = time.monotonic()
        sessions = [
            s
            for name, s in self._scheduler.sessions.items()
            if s.state is SessionState.ACTIVE
            and (
                s.detail.startswith("stopped")
                or now - self._last_output.get(name, 0.0) >= STOP_SILENCE
            )
        ]
        if sessions:
            stops = await anyio.to_thread.run_sync(tty_stops)
            for session in sessions:
                session.note_tty_stops(stops)

    def sample(self) -> None:
        scheduler = self._scheduler
        self._emit(PoolSampled(stats=self._pool.statistics()))
        self._emit(SchedulerSampled(stats=scheduler.statistics()))
        at = time.time()
        scheduler.contention.bus_counted(self._bus.published, at)
        stats = scheduler.contention_statistics(at)
        sample = ContentionSampled(stats=stats)
        self.history.append(sample)
        self._emit(sample)
        self._alerts.check(
            Figures(
                contention=stats,
                failure_rate=scheduler.figures.recent_failure_rate(),
                memory_available=available_memory(),
                dead_lettered=self._bus.dead_lettered,
                silent=self._silent(),
            )
        )

    def _silent(self) -> dict[str, float]:
        """Seconds since each active session last printed (or started, if it never did)."""
        now, wall = time.monotonic(), time.time()
        return {
            name: min(now - self._last_output.get(name, 0.0), wall - (s.started_at or wall))
            for name, s in self._scheduler.sessions.items()
            if s.state is SessionState.ACTIVE
        }
