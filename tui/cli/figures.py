"""The contention model as text for `attach --headless` (and `run --headless`): one line of
figures, then a sparkline per figure over the engine's last minutes of samples; and a line
per per-replica work queue with its balance (docs/contention.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from engine import ContentionSampled, ContentionStatistics, QueueBalance

BLOCKS = " ▁▂▃▄▅▆▇█"
SPARKS = (  # (label, figure, unit)
    ("running", lambda s: float(s.running), ""),
    ("waiting", lambda s: float(s.waiting), ""),
    ("wait p95", lambda s: s.wait_p95, "s"),
    ("done/s", lambda s: s.throughput, "/s"),
)


def sparkline(values: Sequence[float], width: int) -> str:
    """The newest values, one block each (the most recent `width` of them; buckets take
    their largest when there are more), scaled to the largest: 0 is a space."""
    if not values:
        return ""
    if len(values) > width:
        step = len(values) / width
        values = [max(values[int(i * step) : int((i + 1) * step) or 1]) for i in range(width)]
    top = max(values)
    if top <= 0:
        return BLOCKS[0] * len(values)
    return "".join(BLOCKS[round(v / top * (len(BLOCKS) - 1))] for v in values)


def contention_line(s: ContentionStatistics) -> str:
    heading = f" → {s.target_parallel}" if s.target_parallel != s.slots else ""
    return (
        f"contention: max_parallel {s.slots}{heading} ({s.parallel_reason}); running "
        f"{s.running}, waiting {s.waiting}, demand {s.demand}, saturation {s.saturation:.0%}; "
        f"queue wait p50 {s.wait_p50:.1f} s, p95 {s.wait_p95:.1f} s, max {s.wait_max:.1f} s; "
        f"{s.throughput:.2f} sessions/s, bus {s.bus_rate:.0f} msg/s; "
        f"{s.contention_rate:.0%} of {s.starts} starts waited"
    )


def contention_lines(history: Sequence[ContentionSampled], width: int = 60) -> list[str]:
    """The figures of the newest sample, and a sparkline per figure over all of them."""
    if not history:
        return ["contention: no sample yet"]
    lines = [contention_line(history[-1].stats)]
    minutes = len(history) / 60
    for label, figure, unit in SPARKS:
        values = [figure(s.stats) for s in history]
        top = f"{max(values):.1f}{unit}".rjust(8)
        lines.append(f"  {label:<9}{top} {sparkline(values, width)}")
    lines.append(f"  (last {minutes:.1f} min, one sample a second; scale: the largest value)")
    return lines


def balance_lines(balances: Sequence[QueueBalance]) -> list[str]:
    """One line per per-replica work queue: the spread of tasks over its workers."""
    return [
        f"balance: queue {b.queue}, {b.completed} tasks done by {len(b.workers)} workers "
        f"(min {b.tasks_min}, max {b.tasks_max}, mean {b.tasks_mean:.1f}, stdev "
        f"{b.tasks_stdev:.1f}, cv {b.tasks_cv:.2f}; busy cv {b.busy_cv:.2f}); "
        f"{b.stolen} stolen{'' if b.steal else ' (stealing off)'}: "
        + ", ".join(f"{w.session} {w.completed}" for w in b.workers)
        for b in balances
    ]
