"""Figures shared by every layer that reports `statistics()` (pool, scheduler, bus)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable


def percentile(samples: Iterable[float], q: float) -> float:
    """The q-quantile (nearest rank) of samples; 0.0 when there are none."""
    ordered = sorted(samples)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
