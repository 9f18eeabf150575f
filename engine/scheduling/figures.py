"""The scheduler's running figures: queue waits, finishes, throughput, the failure window.

Kept apart from the scheduling rules so that `statistics()` stays a cheap read and the
rules stay readable.
"""

from __future__ import annotations

import time
from collections import deque

from engine.metrics import percentile

THROUGHPUT_WINDOW = 30.0


class Figures:
    def __init__(self, failure_window: int) -> None:
        self.retried = 0
        self._waits: deque[float] = deque(maxlen=4096)
        self._finishes: deque[float] = deque()
        self._outcomes: deque[bool] = deque(maxlen=failure_window)
        self._since = time.monotonic()

    def started(self, queue_wait: float) -> None:
        self._waits.append(queue_wait)

    def attempt_finished(self) -> None:
        now = time.monotonic()
        self._finishes.append(now)
        while self._finishes and self._finishes[0] < now - THROUGHPUT_WINDOW:
            self._finishes.popleft()

    def outcome(self, failed: bool) -> None:
        """A session's final result (after its retries), for max_failure_rate."""
        self._outcomes.append(failed)

    def failure_rate(self) -> float | None:
        """Failed share of the last `failure_window` finishes; None until the window fills."""
        if len(self._outcomes) < (self._outcomes.maxlen or 0):
            return None
        return sum(self._outcomes) / len(self._outcomes)

    def recent_failure_rate(self) -> float | None:
        """Failed share of the last `failure_window` finishes so far; None before any."""
        return sum(self._outcomes) / len(self._outcomes) if self._outcomes else None

    def throughput(self) -> float:
        now = time.monotonic()
        recent = sum(1 for t in self._finishes if t >= now - THROUGHPUT_WINDOW)
        span = min(THROUGHPUT_WINDOW, max(now - self._since, 1e-3))
        return recent / span

    def wait_mean(self) -> float:
        return sum(self._waits) / len(self._waits) if self._waits else 0.0

    def wait_p95(self) -> float:
        return percentile(list(self._waits), 0.95)
