"""`max_parallel = "auto"`: a concurrency limit that finds the best level, and keeps it.

The feedback is fast and measured on the work itself, not on the 1-minute load average:

* run-time inflation: each completed attempt's run time over the fastest seen for its
  template (the first of a template sets the baseline and is not a sample); the median
  over attempts *started since the last change* says what the current level costs. On
  I/O-bound work it stays ~1 however high the limit; on CPU-bound work past the cores it
  grows with the limit (4 jobs on 2 cores run ×2);
* CPU pressure: the share of the last period some task waited for a CPU, from the
  `some total` counter of /proc/pressure/cpu (PSI) where present, and the runnable
  count of /proc/loadavg (instantaneous) otherwise and as a second witness;
* memory available (/proc/meminfo), and whether the limit is binding (sessions ready,
  every slot taken).

Every `PERIOD`, and as soon as an attempt completes, the controller samples them and
`AutoParallelism.decide` applies the first rule that matches (docs/scheduling.md):

1. available memory under 10 % → one fewer;
2. inflated (median ×1.3 or more) while the CPU is contended → cut to limit / inflation
   (the level the CPU actually serves), and remember that level as too high for `REPROBE`
   seconds;
3. binding, and flat (median under ×1.15) → raise: ×4 (slow start: each step costs one
   run time, so few big steps; an overshoot is cut back in one step by rule 2) until a
   level is found too high, then one at a time, and not back to that level for `REPROBE`
   seconds;
4. binding, no sample since the last change yet, the CPU idle, `HOLD` seconds passed →
   the same raise (long sessions give samples late);
5. the CPU saturated (stalled over `HIGH_STALL` and over 1.5 runnable per core) with no
   flat sample to say the work is not CPU-bound, above the core count → one fewer.

It starts at min(cores, pool size) and never leaves 1..pool size.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from engine.scheduling.machine import CpuPressure, memory_available

if TYPE_CHECKING:
    from collections.abc import Callable

PERIOD = 0.5
NAP = 0.1  # at least this between two decisions (a new sample wakes the controller)
HOLD = 1.0
REPROBE = 15.0
LOW_MEMORY = 0.10
INFLATED = 1.3
FLAT = 1.15
LOW_STALL = 0.10
HIGH_STALL = 0.25
MIN_SAMPLES = 3  # at most; at least 1, and half the limit below 6
GROWTH = 4  # slow start's factor: one run time per step, so few steps


@dataclass(frozen=True)
class Pressure:
    """One sample: the machine's pressure and the scheduler's own figures."""

    cpu_stall: float  # share of the last period some task waited for a CPU
    runnable_per_core: float
    memory_available: float  # fraction of total, 0..1
    ready: int
    running: int
    inflation: float | None = None  # median, attempts started since the last change
    samples: int = 0


@dataclass(frozen=True)
class Adjustment:
    old: int
    new: int
    reason: str


class RunTimes:
    """Completed attempts' run times against the fastest of their template."""

    def __init__(self) -> None:
        self._fastest: dict[str, float] = {}
        self._ratios: list[tuple[float, float]] = []  # (started_at, ratio)
        self.arrived = anyio.Event()  # a new sample: the controller need not wait a PERIOD

    def completed(self, template: str, started_at: float, run_time: float) -> None:
        self.arrived.set()
        fastest = self._fastest.get(template)
        if fastest is None:
            self._fastest[template] = max(run_time, 1e-3)
            return
        self._ratios.append((started_at, run_time / fastest))
        self._fastest[template] = min(fastest, max(run_time, 1e-3))
        del self._ratios[:-256]

    def inflation(self, since: float) -> tuple[float | None, int]:
        """Median ratio of the attempts started at or after `since`, and how many."""
        ratios = [r for t, r in self._ratios if t >= since]
        return (statistics.median(ratios) if ratios else None), len(ratios)


class AutoParallelism:
    def __init__(self, ceiling: int, cores: int | None = None) -> None:
        self.ceiling = ceiling
        self.cores = cores or os.cpu_count() or 1
        self.limit = max(1, min(ceiling, self.cores))
        self.run_times = RunTimes()
        self.changed_at = time.time()  # wall clock, as the sessions' started_at
        self._too_high: tuple[int, float] | None = None  # (level, until)
        self._settling = False  # cut: wait until no more run than the new limit
        self._now = self.changed_at

    @property
    def target(self) -> int:
        """Where the limit is heading: the pool size, or below a level found too high."""
        if self._too_high is not None and self._too_high[1] > self._now:
            return max(1, min(self.ceiling, self._too_high[0] - 1))
        return self.ceiling

    def sample_inflation(self) -> tuple[float | None, int]:
        return self.run_times.inflation(self.changed_at)

    def decide(self, sample: Pressure, now: float) -> Adjustment | None:
        """The next limit and why, or None to keep it; applies the change itself."""
        self._now = now
        if self._settling and sample.running <= self.limit:
            self._settling, self.changed_at = False, now  # samples count from here
            return None
        found = self._rule(sample, now)
        if found is None or found[0] == self.limit:
            return None
        new, reason = found
        change = Adjustment(self.limit, new, f"auto: {reason}")
        self._settling = new < self.limit
        self.limit, self.changed_at = new, now
        return change

    def _rule(self, s: Pressure, now: float) -> tuple[int, str] | None:
        lower = max(1, self.limit - 1)
        busy = s.cpu_stall > HIGH_STALL or s.runnable_per_core > 1.0
        cpu = f"CPU stalled {s.cpu_stall:.0%}, {s.runnable_per_core:.1f} runnable per core"
        if s.memory_available < LOW_MEMORY:
            return lower, f"available memory {s.memory_available:.0%} < {LOW_MEMORY:.0%}"
        if self._settling:
            return None  # sessions of the higher level still run: no sample is fair yet
        enough = s.inflation is not None and s.samples >= max(1, min(MIN_SAMPLES, self.limit // 2))
        if enough and s.inflation is not None and s.inflation >= INFLATED and busy:
            self._too_high = (self.limit, now + REPROBE)
            new = max(1, min(lower, round(self.limit / s.inflation)))
            return new, f"run time ×{s.inflation:.2f} at {self.limit} ({cpu})"
        binding = s.ready > 0 and s.running >= self.limit and self.limit < self.ceiling
        flat = enough and s.inflation is not None and s.inflation < FLAT
        if binding and flat:
            return self._raise(now), f"{s.ready} ready, run time ×{s.inflation:.2f} at {self.limit}"
        idle = s.cpu_stall < LOW_STALL and s.runnable_per_core < 1.0
        if binding and s.samples == 0 and idle and now - self.changed_at >= HOLD:
            return self._raise(now), f"{s.ready} ready, {cpu}"
        saturated = s.cpu_stall > HIGH_STALL and s.runnable_per_core > 1.5
        if saturated and not flat and self.limit > self.cores and now - self.changed_at >= HOLD:
            return lower, f"CPU saturated ({cpu})"
        return None

    def _raise(self, now: float) -> int:
        """×GROWTH until a level is found too high (slow start); from then on one at a
        time, and not back to that level for REPROBE seconds."""
        if self._too_high is None:
            return min(self.ceiling, self.limit * GROWTH)
        level, until = self._too_high
        below = max(self.limit, level - 1) if until > now else self.ceiling
        return min(self.ceiling, self.limit + 1, below)


async def control(
    auto: AutoParallelism,
    own_figures: Callable[[], tuple[int, int]],
    apply: Callable[[Adjustment], None],
) -> None:
    """The controller loop: every PERIOD, or as soon as an attempt completes (NAP apart),
    sample the machine and the scheduler's own (ready, running) figures, decide, and
    apply a change; runs until cancelled."""
    cpu = CpuPressure()
    cpu.read()
    while True:
        await anyio.sleep(NAP)
        with anyio.move_on_after(PERIOD - NAP):
            await auto.run_times.arrived.wait()
        auto.run_times.arrived = anyio.Event()
        stall, runnable = cpu.read()
        inflation, samples = auto.sample_inflation()
        ready, running = own_figures()
        sample = Pressure(stall, runnable, memory_available(), ready, running, inflation, samples)
        change = auto.decide(sample, time.time())
        if change is not None:
            apply(change)
