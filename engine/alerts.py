"""Alerts: the deck's `[alerts]` thresholds, watched once a second.

An alert is raised when its figure crosses the threshold and cleared when it comes back,
so a lasting condition is said once, not on every sample. Each raise and clear is:

* an event (`AlertRaised`, `AlertCleared`) for the room and every attached client;
* a line of `alerts.jsonl` in the run directory (the event as JSON);
* a message on the bus topic `swarmdeck.alerts` (the same JSON), so agents can react.

A figure is the contention model's (docs/contention.md) or the machine's; `subject` says
what it is about (`run`, `bus`, `machine` or a session's name).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.events import AlertCleared, AlertRaised
from engine.scheduling.contention import HISTORY

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from engine.deck.alert_spec import AlertsSpec
    from engine.statistics import ContentionStatistics

TOPIC = "swarmdeck.alerts"
DLQ_WINDOW = 60.0


@dataclass(frozen=True)
class Figures:
    """What the thresholds are compared with, read by the engine once a second."""

    contention: ContentionStatistics
    failure_rate: float | None  # failed share of the last failure_window final results
    memory_available: int | None  # bytes
    dead_lettered: int  # the bus's counter since the start
    silent: dict[str, float]  # active session -> seconds since its last output


@dataclass(frozen=True)
class Crossing:
    kind: str
    subject: str
    value: float
    threshold: float
    text: str


class Alerts:
    def __init__(
        self,
        spec: AlertsSpec,
        run_dir: Path,
        emit: Callable[[AlertRaised | AlertCleared], None],
        publish: Callable[[str], None],
    ) -> None:
        self.spec = spec
        self.path = run_dir / "alerts.jsonl"
        self._emit, self._publish = emit, publish
        self.active: dict[tuple[str, str], AlertRaised] = {}
        self.history: deque[AlertRaised | AlertCleared] = deque(maxlen=HISTORY)
        self._dead: deque[tuple[float, int]] = deque()

    def check(self, figures: Figures, now: float | None = None) -> None:
        """Raise what crossed its threshold, clear what came back."""
        now = time.monotonic() if now is None else now
        found = {(c.kind, c.subject): c for c in self._crossings(figures, now)}
        for key, crossing in found.items():
            if key not in self.active:
                raised = AlertRaised(
                    alert=crossing.kind, subject=crossing.subject, value=crossing.value,
                    threshold=crossing.threshold, text=crossing.text,
                )  # fmt: skip
                self.active[key] = raised
                self._tell(raised)
        for key in [k for k in self.active if k not in found]:
            gone = self.active.pop(key)
            text = f"cleared: {gone.text}"
            self._tell(AlertCleared(alert=gone.alert, subject=gone.subject, text=text))

    def _tell(self, event: AlertRaised | AlertCleared) -> None:
        self.history.append(event)
        line = event.model_dump_json()
        with self.path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")
        self._emit(event)
        self._publish(line)

    def _crossings(self, f: Figures, now: float) -> Iterator[Crossing]:
        spec, c = self.spec, f.contention
        if spec.saturation is not None and c.saturation >= spec.saturation:
            text = f"saturated: {c.waiting} waiting for {c.slots} slots ({c.saturation:.0%})"
            yield Crossing("saturation", "run", c.saturation, spec.saturation, text)
        if spec.queue_wait_p95 is not None and c.wait_p95 > spec.queue_wait_p95:
            text = f"queue wait p95 {c.wait_p95:.1f}s > {spec.queue_wait_p95:g}s"
            yield Crossing("queue_wait_p95", "run", c.wait_p95, spec.queue_wait_p95, text)
        rate = f.failure_rate
        if spec.failure_rate is not None and rate is not None and rate >= spec.failure_rate:
            text = f"{rate:.0%} of recent sessions failed (alert at {spec.failure_rate:.0%})"
            yield Crossing("failure_rate", "run", rate, spec.failure_rate, text)
        free, floor = f.memory_available, spec.memory_available
        if floor is not None and free is not None and free < floor:
            text = f"available memory {free / 2**20:.0f} MiB < {floor / 2**20:.0f} MiB"
            yield Crossing("memory_available", "machine", free, floor, text)
        yield from self._dlq(f.dead_lettered, now)
        if spec.silent is not None:
            for name, quiet in sorted(f.silent.items()):
                if quiet >= spec.silent:
                    text = f"{name} printed nothing for {quiet:.0f}s"
                    yield Crossing("silent", name, quiet, spec.silent, text)

    def _dlq(self, dead: int, now: float) -> Iterator[Crossing]:
        """Dead letters added over the last DLQ_WINDOW seconds."""
        self._dead.append((now, dead))
        while len(self._dead) > 1 and self._dead[1][0] <= now - DLQ_WINDOW:
            self._dead.popleft()
        grown = dead - self._dead[0][1]
        limit = self.spec.dlq_growth
        if limit is not None and grown >= limit:
            text = f"{grown} bus messages dead-lettered in the last minute"
            yield Crossing("dlq_growth", "bus", grown, limit, text)
