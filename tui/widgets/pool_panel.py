"""The pool panel: gauges, a few minutes of sparkline history, and contention alerts.

Samples arrive once a second (`PoolSampled`); the panel keeps the last `HISTORY` of them.
An alert is raised when a threshold is crossed (and said once, as a notification), not on
every sample that stays above it.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from textual.containers import Vertical
from textual.widgets import Label, ProgressBar, Sparkline, Static

from tui.incidents import Guarded

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from engine import PoolSampled

HISTORY = 180
WAIT_P95_LIMIT = 1.0
SATURATION_LIMIT = 1.0


def alerts(sample: PoolSampled) -> list[tuple[str, str]]:
    """Contention worth an operator's attention in one sample, as (kind, text)."""
    found = []
    if sample.saturation >= SATURATION_LIMIT:
        text = f"saturated: {sample.waiters} waiting for {sample.capacity} terminals"
        found.append(("saturated", text))
    if sample.wait_p95 > WAIT_P95_LIMIT:
        text = f"acquire wait p95 {sample.wait_p95:.1f}s > {WAIT_P95_LIMIT:.0f}s"
        found.append(("wait", text))
    return found


def summary(sample: PoolSampled) -> str:
    return (
        f"size {sample.size}/{sample.capacity}  in use {sample.in_use}  idle {sample.idle}\n"
        f"waiters {sample.waiters}  leases {sample.leases}  recycled {sample.recycled}\n"
        f"wait p50 {sample.wait_p50 * 1000:.0f} ms  p95 {sample.wait_p95 * 1000:.0f} ms"
    )


class PoolPanel(Guarded, Vertical):
    def __init__(self) -> None:
        super().__init__(id="pool")
        self.border_title = "pool"
        self.in_use: deque[float] = deque(maxlen=HISTORY)
        self.waiters: deque[float] = deque(maxlen=HISTORY)
        self.wait_p95: deque[float] = deque(maxlen=HISTORY)
        self._alerting: set[str] = set()

    def compose(self) -> ComposeResult:
        yield Static("waiting for the first sample…", id="pool-summary")
        yield Label("utilisation", classes="gauge-label")
        yield ProgressBar(total=100, show_eta=False, id="utilisation")
        yield Label("saturation", classes="gauge-label")
        yield ProgressBar(total=100, show_eta=False, id="saturation")
        yield Label("in use · last 3 min", classes="spark-label")
        yield Sparkline([], summary_function=max, id="spark-in-use")
        yield Label("waiters", classes="spark-label")
        yield Sparkline([], summary_function=max, id="spark-waiters")
        yield Label("acquire wait p95", classes="spark-label")
        yield Sparkline([], summary_function=max, id="spark-wait")
        yield Static("", id="pool-alert")

    def add_sample(self, sample: PoolSampled) -> None:
        self.in_use.append(sample.in_use)
        self.waiters.append(sample.waiters)
        self.wait_p95.append(sample.wait_p95)
        self.query_one("#pool-summary", Static).update(summary(sample))
        self.query_one("#utilisation", ProgressBar).update(progress=sample.utilisation * 100)
        saturation = min(sample.saturation, 1.0) * 100
        self.query_one("#saturation", ProgressBar).update(progress=saturation)
        self.query_one("#spark-in-use", Sparkline).data = list(self.in_use)
        self.query_one("#spark-waiters", Sparkline).data = list(self.waiters)
        self.query_one("#spark-wait", Sparkline).data = list(self.wait_p95)
        self._alert(alerts(sample))

    def _alert(self, found: list[tuple[str, str]]) -> None:
        for kind, text in found:
            if kind not in self._alerting:
                self.notify(text, title="pool contention", severity="warning", markup=False)
        self._alerting = {kind for kind, _ in found}
        alert = self.query_one("#pool-alert", Static)
        alert.update("\n".join(f"⚠ {text}" for _, text in found))
        self.set_class(bool(found), "-alerting")
