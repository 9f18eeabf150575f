"""A session's attempts, bounded: a session retried or restarted for days keeps the first
attempt and the last `KEEP - 1` (each ~1.7 KB as a model), while its counts stay exact:
`len()` is every attempt ever made, and the totals a viewer shows (queue wait, run time,
first start) cover every attempt, kept or not.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    from engine.sessions.info import AttemptInfo

KEEP = 100


class AttemptHistory:
    def __init__(self, keep: int = KEEP) -> None:
        self.first: AttemptInfo | None = None
        self._recent: deque[AttemptInfo] = deque(maxlen=max(1, keep - 1))
        self.count = 0
        self.queue_wait: float | None = None
        self.run_time: float | None = None
        self.first_started_at: float | None = None

    def append(self, attempt: AttemptInfo) -> None:
        self.count += 1
        if self.first is None:
            self.first = attempt
        else:
            self._recent.append(attempt)
        if attempt.queue_wait is not None:
            self.queue_wait = (self.queue_wait or 0.0) + attempt.queue_wait
        if attempt.run_time is not None:
            self.run_time = (self.run_time or 0.0) + attempt.run_time
        if self.first_started_at is None and attempt.started_at is not None:
            self.first_started_at = attempt.started_at

    def kept(self) -> tuple[AttemptInfo, ...]:
        return (self.first, *self._recent) if self.first is not None else ()

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[AttemptInfo]:
        return iter(self.kept())

    def last(self) -> AttemptInfo | None:
        if self._recent:
            return self._recent[-1]
        return self.first
