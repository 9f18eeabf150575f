"""`max_parallel = "auto"`: a concurrency limit that follows the machine, one step at a time.

Every `PERIOD` seconds the scheduler samples pressure (load average per core, available
memory) and its own throughput, and `AutoParallelism.decide` returns a new limit with the
reason, or None. The rules, first match wins:

1. available memory under 10 % → one fewer (never below 1);
2. load per core over 1.5 → one fewer;
3. the last raise did not pay (throughput fell by over 20 % since) → back down;
4. sessions are ready, the limit is binding, load per core under 1.0 → one more
   (never above the pool size).

After any change it waits `COOLDOWN` seconds: the 1-minute load average lags, and reacting
to stale figures would oscillate. It starts at min(cores, pool size).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from collections.abc import Callable

PERIOD = 2.0
COOLDOWN = 6.0
LOW_MEMORY = 0.10
HIGH_LOAD = 1.5
LOW_LOAD = 1.0
THROUGHPUT_DROP = 0.8


@dataclass(frozen=True)
class Pressure:
    """One sample: system pressure and the scheduler's own figures."""

    load_per_core: float
    memory_available: float  # fraction of total, 0..1
    throughput: float
    ready: int
    running: int


@dataclass(frozen=True)
class Adjustment:
    old: int
    new: int
    reason: str


class AutoParallelism:
    def __init__(self, ceiling: int, cores: int | None = None) -> None:
        self.ceiling = ceiling
        self.limit = max(1, min(ceiling, cores or os.cpu_count() or 1))
        self._quiet_until = 0.0
        self._before_raise: float | None = None

    def decide(self, sample: Pressure, now: float) -> Adjustment | None:
        """The next limit and why, or None to keep it; applies the change itself."""
        if now < self._quiet_until:
            return None
        found = self._rule(sample)
        if found is None:
            return None
        new, reason = found
        self._before_raise = sample.throughput if new > self.limit else None
        change = Adjustment(self.limit, new, reason)
        self.limit, self._quiet_until = new, now + COOLDOWN
        return change

    def _rule(self, s: Pressure) -> tuple[int, str] | None:
        lower = max(1, self.limit - 1)
        if s.memory_available < LOW_MEMORY and lower < self.limit:
            return lower, f"available memory {s.memory_available:.0%} < {LOW_MEMORY:.0%}"
        if s.load_per_core > HIGH_LOAD and lower < self.limit:
            return lower, f"load {s.load_per_core:.2f} per core > {HIGH_LOAD}"
        before = self._before_raise
        if before and s.throughput < before * THROUGHPUT_DROP and lower < self.limit:
            return lower, (
                f"throughput fell from {before:.2f}/s to {s.throughput:.2f}/s after the raise"
            )
        binding = s.ready > 0 and s.running >= self.limit < self.ceiling
        if binding and s.load_per_core < LOW_LOAD and s.memory_available >= LOW_MEMORY:
            return self.limit + 1, (
                f"{s.ready} ready, load {s.load_per_core:.2f} per core < {LOW_LOAD}"
            )
        return None


def system_pressure() -> tuple[float, float]:
    """(1-minute load average per core, available memory as a fraction of total)."""
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    fields: dict[str, int] = {}
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                key, _, rest = line.partition(":")
                fields[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        return load, 1.0
    total = fields.get("MemTotal", 0)
    return load, (fields.get("MemAvailable", total) / total if total else 1.0)


async def control(
    auto: AutoParallelism,
    own_figures: Callable[[], tuple[float, int, int]],
    apply: Callable[[Adjustment], None],
) -> None:
    """The controller loop: every PERIOD, sample the machine and the scheduler's own
    (throughput, ready, running), decide, and apply a change; runs until cancelled."""
    while True:
        await anyio.sleep(PERIOD)
        load, memory = system_pressure()
        sample = Pressure(load, memory, *own_figures())
        change = auto.decide(sample, time.monotonic())
        if change is not None:
            apply(change)
