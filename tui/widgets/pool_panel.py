"""The pool panel: the contention model live (docs/contention.md), with a few minutes of
sparklines, max_parallel and why it has its value, and the terminals behind the slots.

Contention samples (`ContentionSampled`) and pool samples (`PoolSampled`) arrive once a
second; the panel keeps the last `HISTORY` contention samples (seeded from the engine's
own history, so an attached room shows the minutes before it came). Sessions wait in the
scheduler for a slot, never in the pool, so the waits shown are the scheduler's; the
pool's acquire time is terminal start-up, shown as such. A deck with per-replica work
queues also gets their balance (tasks per worker, steals), hidden otherwise.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from textual.containers import Horizontal, Vertical
from textual.widgets import Label, ProgressBar, Sparkline, Static

from tui.incidents import Guarded

if TYPE_CHECKING:
    from collections.abc import Iterable

    from textual.app import ComposeResult

    from engine import (
        ContentionSampled,
        ContentionStatistics,
        HostStatistics,
        PoolSampled,
        PoolStatistics,
        QueueBalance,
    )

HISTORY = 180
SPARKS = (  # (id, label, figure of a sample)
    ("running", "running", lambda s: float(s.running)),
    ("waiting", "waiting", lambda s: float(s.waiting)),
    ("wait", "wait p95", lambda s: s.wait_p95),
    ("throughput", "done/s", lambda s: s.throughput),
)


def seconds(value: float) -> str:
    """A duration short enough for the panel: ms under a second, then s, then min."""
    if value < 1.0:
        return f"{value * 1000:.0f} ms"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def contention_text(s: ContentionStatistics) -> str:
    """The model's figures, one idea per line (the panel is 36 columns wide)."""
    heading = f"→ {s.target_parallel}" if s.target_parallel != s.slots else ""
    return (
        f"max_parallel {s.slots} {heading}\n"
        f"{s.parallel_reason}\n"
        f"running {s.running}  waiting {s.waiting}  demand {s.demand}\n"
        f"queue wait p50 {seconds(s.wait_p50)}  p95 {seconds(s.wait_p95)}\n"
        f"queue wait max {seconds(s.wait_max)}  (last {s.window:.0f} s)\n"
        f"{s.throughput:.2f} sessions/s  bus {s.bus_rate:.0f} msg/s\n"
        f"{s.contention_rate:.0%} of {s.starts} starts waited for a slot"
    )


def terminals_text(s: PoolStatistics) -> str:
    return (
        f"terminals {s.size}/{s.capacity}  in use {s.in_use}  idle {s.idle}\n"
        f"start-up p95 {seconds(s.wait_p95)}  recycled {s.recycled}"
    )


def balance_text(balances: Iterable[QueueBalance]) -> str:
    """Each per-replica work queue: done, stolen, the spread, then tasks per worker."""
    blocks = []
    for b in balances:
        workers = "  ".join(f"{w.session} {w.completed}" for w in b.workers)
        blocks.append(
            f"queue {b.queue}: {b.completed} done, {b.stolen} stolen\n"
            f"per worker {b.tasks_min}-{b.tasks_max}  cv {b.tasks_cv:.2f}  "
            f"busy cv {b.busy_cv:.2f}\n"
            f"{workers}"
        )
    return "\n".join(blocks)


def hosts_text(hosts: Iterable[HostStatistics]) -> str:
    """Each [[host]]: up or down, channels in use of its limit, round trip, slots in use
    of its pool.size (sessions there), failures, and whether its sessions lack the bus."""
    lines = []
    for h in hosts:
        rtt = f"rtt {seconds(h.rtt)}" if h.rtt is not None else "rtt -"
        if h.connected:
            lines.append(f"host {h.host}: up  channels {h.channels}/{h.max_channels}  {rtt}")
        else:
            lines.append(f"host {h.host}: DOWN  {h.last_error or 'not connected'}")
        lines.append(f"  slots {h.slots_in_use}/{h.slots}  connects {h.connects}")
        lines.append(f"  failures {h.failures}  drops {h.drops}")
        if h.bus_problem is not None:
            lines.append("  no bus: its sshd refused to forward it")
        if h.warm_problem is not None:
            lines.append("  fresh terminals only: its sshd refused warm ones")
    return "\n".join(lines)


class PoolPanel(Guarded, Vertical):
    def __init__(self) -> None:
        super().__init__(id="pool")
        self.border_title = "contention"
        self.history: deque[ContentionSampled] = deque(maxlen=HISTORY)

    def compose(self) -> ComposeResult:
        yield Static("waiting for the first sample…", id="contention-summary")
        yield Label("utilisation (running / slots)", classes="gauge-label")
        yield ProgressBar(total=100, show_eta=False, id="utilisation")
        yield Label("saturation (waiting / slots)", classes="gauge-label")
        yield ProgressBar(total=100, show_eta=False, id="saturation")
        yield Label("last 3 min", classes="spark-label")
        for name, label, _ in SPARKS:
            with Horizontal(classes="spark-row"):
                yield Label(label, classes="spark-name")
                yield Sparkline([], summary_function=max, id=f"spark-{name}")
        yield Static("", id="pool-summary")
        balance = Static("", id="pool-balance")
        balance.display = False
        yield balance
        hosts = Static("", id="pool-hosts")
        hosts.display = False
        yield hosts
        yield Static("", id="pool-alert")

    def seed(self, samples: Iterable[ContentionSampled]) -> None:
        """The minutes before the room came (the engine's history), oldest first."""
        for sample in samples:
            self.history.append(sample)
        if self.history:
            self.add_contention(self.history.pop())

    def add_contention(self, sample: ContentionSampled) -> None:
        self.history.append(sample)
        self.query_one("#contention-summary", Static).update(contention_text(sample.stats))
        utilisation = min(sample.stats.utilisation, 1.0) * 100
        self.query_one("#utilisation", ProgressBar).update(progress=utilisation)
        saturation = min(sample.stats.saturation, 1.0) * 100
        self.query_one("#saturation", ProgressBar).update(progress=saturation)
        for name, _, figure in SPARKS:
            spark = self.query_one(f"#spark-{name}", Sparkline)
            spark.data = [figure(s.stats) for s in self.history]

    def add_sample(self, sample: PoolSampled) -> None:
        self.query_one("#pool-summary", Static).update(terminals_text(sample.stats))

    def show_balance(self, balances: tuple[QueueBalance, ...]) -> None:
        """The per-replica work queues' balance (docs/contention.md); hidden without any."""
        widget = self.query_one("#pool-balance", Static)
        widget.display = bool(balances)
        widget.update(balance_text(balances))

    def show_hosts(self, hosts: list[HostStatistics]) -> None:
        """The deck's hosts' connections (docs/hosts.md); hidden for a deck without any."""
        widget = self.query_one("#pool-hosts", Static)
        widget.display = bool(hosts)
        widget.update(hosts_text(hosts))

    def show_alerts(self, texts: list[str]) -> None:
        """The alerts in force (their history is on `!`, tui/screens/alerts.py)."""
        self.query_one("#pool-alert", Static).update("\n".join(f"⚠ {t}" for t in texts))
        self.set_class(bool(texts), "-alerting")
