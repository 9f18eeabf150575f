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
2. inflated (median ×1.3 or more) while the CPU is contended, and the level does not pay:
   its throughput, limit / inflation ("jobs' worth" at full speed), is under 1.1× what a
   lower level measured in the last `REPROBE` seconds served → cut to the lowest level
   that served as much, and remember this one as too high for `REPROBE` seconds (on an
   idle 2-core machine, CPU-bound jobs serve 2 jobs' worth at 2 and at 8: back to 2; on a
   CPU shared with other work, 8 may serve more than 2, and is kept);
3. binding, and measured (flat, or inflated but paying) → raise: ×4 (slow start: each
   step costs one run time, so few big steps; an overshoot is cut back in one step by
   rule 2) until a level is found too high, then one at a time, and not back to that
   level for `REPROBE` seconds;
4. binding, no sample since the last change yet, the CPU idle, `HOLD` seconds passed →
   the same raise (long sessions give samples late);
5. the CPU saturated (stalled over `HIGH_STALL` and over 1.5 runnable per core), above
   the core count, and no run finished for `STALE` seconds since the last change (so
   nothing says what the level costs) → one fewer.

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
LOW_STALL = 0.10
HIGH_STALL = 0.25
MIN_SAMPLES = 3  # at most; at least 1, and half the limit below 6
PAYS = 1.1  # a higher level pays when it serves 10 % more than a lower one did
STALE = 5.0  # no run finished this long: the CPU figures alone may lower the limit
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
        self._served: dict[int, tuple[float, float]] = {}  # level -> (jobs' worth, when)

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
        needed = max(1, min(MIN_SAMPLES, self.limit // 2))
        inflation = s.inflation if s.inflation is not None and s.samples >= needed else None
        if inflation is not None:
            here = self.limit / inflation  # throughput, in jobs run at full speed
            self._served[self.limit] = (here, now)
            if inflation >= INFLATED and busy:
                cut = self._cut(here, inflation)
                if cut is not None:
                    self._too_high = (self.limit, now + REPROBE)
                    new, worth = cut
                    return max(1, min(lower, new)), (
                        f"run time ×{inflation:.2f} at {self.limit}: {here:.1f} jobs' worth, "
                        f"no more than {worth} ({cpu})"
                    )
        binding = s.ready > 0 and s.running >= self.limit and self.limit < self.ceiling
        if binding and inflation is not None:  # measured, and not cut: probe higher
            worth = f"{self.limit / inflation:.1f} jobs' worth"
            return self._raise(now), (
                f"{s.ready} ready, run time ×{inflation:.2f} at {self.limit} ({worth})"
            )
        idle = s.cpu_stall < LOW_STALL and s.runnable_per_core < 1.0
        if binding and s.samples == 0 and idle and now - self.changed_at >= HOLD:
            return self._raise(now), f"{s.ready} ready, {cpu}"
        saturated = s.cpu_stall > HIGH_STALL and s.runnable_per_core > 1.5
        waited = now - self.changed_at >= STALE
        if saturated and s.samples == 0 and self.limit > self.cores and waited:
            return lower, f"CPU saturated and no run finished for {STALE:.0f}s ({cpu})"
        return None

    def _cut(self, here: float, inflation: float) -> tuple[int, str] | None:
        """Where to cut an inflated level to, or None when it still pays: it serves over
        PAYS times what the best lower level measured in the last REPROBE seconds did."""
        below = {
            level: worth
            for level, (worth, when) in self._served.items()
            if level < self.limit and when >= self._now - REPROBE
        }
        if not below:  # nothing to compare with: above the cores, serve what the CPU does
            if self.limit <= self.cores:
                return None
            return max(self.cores, round(self.limit / inflation)), "than the cores"
        if here >= max(below.values()) * PAYS:
            return None
        fits = [level for level, worth in below.items() if worth * PAYS >= here]
        level = min(fits) if fits else max(below, key=lambda k: below[k])
        return level, f"than {below[level]:.1f} at {level}"

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
