"""The run queue: sessions not yet admitted, sorted into ready, waiting and backing off.

* Ready: every dependency met (engine/deck/dependencies.py) and no retry backoff pending; kept
  best first: highest priority, then file order (the order sessions were added: replicas in
  index order, forks after the deck's sessions, a retry keeps its original place).
* Waiting: a dependency is not met yet. Backing off: a retry's delay has not elapsed.
  Held: `autostart = false`, until an operator starts it.
* Hopeless: a dependency can no longer be met; `classify` hands such a session back to the
  scheduler, which skips it (one at a time, since skipping one may doom others).

The scheduler (scheduling/scheduler.py) owns admission; this module only orders and classifies.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from engine.deck.priorities import PRIORITY_RANK
from engine.scheduling.readiness import Outcome, Readiness, readiness
from engine.states import SessionState

if TYPE_CHECKING:
    from engine.sessions.session import Session


class RunQueue:
    def __init__(self) -> None:
        self.ready: list[Session] = []
        self.waiting = self.backing_off = 0
        self._held: set[Session] = set()
        self._queue: list[Session] = []
        self._rank: dict[str, tuple[int, int]] = {}
        self._templates: dict[str, list[Session]] = {}
        self._not_before: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._queue)

    def __contains__(self, session: Session) -> bool:
        return session in self._queue

    def add(self, session: Session) -> None:
        """A new session: it takes the next place in file order."""
        self._templates.setdefault(session.template, []).append(session)
        self._rank[session.name] = (PRIORITY_RANK[session.spec.priority], len(self._rank))
        self._queue.append(session)

    def put_back(self, session: Session, not_before: float | None = None) -> None:
        """A session queued again (retry or restart), not ready before `not_before`
        (monotonic); it keeps its place in the order."""
        if not_before is None:
            self._not_before.pop(session.name, None)
        else:
            self._not_before[session.name] = not_before
        self._queue.append(session)

    def queued(self) -> list[Session]:
        """Every session in the queue, in no particular order."""
        return list(self._queue)

    def held(self, session: Session) -> bool:
        """Waiting for an operator's start (`autostart = false`)."""
        return session in self._held

    def hold(self, session: Session) -> None:
        self._held.add(session)

    def release(self, session: Session) -> bool:
        """Let a held session go (True), or say it was not held (False)."""
        if session not in self._held or session not in self._queue:
            return False
        self._held.discard(session)
        return True

    def take_held(self) -> list[Session]:
        """Remove and return every held session (the run is ending)."""
        held = [s for s in self._queue if s in self._held]
        for session in held:
            self.remove(session)
        self._held.clear()
        return held

    @property
    def stalled(self) -> bool:
        """Nothing left can move by itself: every queued session is held or waits (on a
        held one, once nothing runs). Valid after `classify`."""
        held = sum(1 for s in self._queue if s in self._held)
        return held > 0 and held + self.waiting == len(self._queue)

    def rank(self, session: Session) -> tuple[int, int]:
        """Where it stands: priority, then file order (lower is better)."""
        return self._rank[session.name]

    def remove(self, session: Session) -> None:
        self._queue.remove(session)
        if session in self.ready:
            self.ready.remove(session)

    def drain(self) -> list[Session]:
        """Empty the queue; return what it held."""
        queued, self._queue, self.ready = self._queue, [], []
        return queued

    def classify(self) -> tuple[Session, str] | None:
        """Sort into ready / waiting / backing off; a hopeless session is removed and
        returned with the reason (classify again after skipping it)."""
        now, wall = time.monotonic(), time.time()
        self._queue = [s for s in self._queue if s.state is SessionState.QUEUED]
        ready, self.waiting, self.backing_off = [], 0, 0
        for session in self._queue:
            if session in self._held:
                continue
            if self._not_before.get(session.name, 0.0) > now:
                self.backing_off += 1
                continue
            verdict, why = self._readiness(session)
            if verdict == "skip":
                self._queue.remove(session)
                return session, why
            if verdict == "wait":
                self.waiting += 1
                continue
            session.ready_at = session.ready_at or wall
            ready.append(session)
        self.ready = sorted(ready, key=lambda s: self._rank[s.name])
        return None

    def _readiness(self, session: Session) -> tuple[Readiness, str]:
        found: Readiness = "ready"
        for dep in session.spec.depends_on:
            group = self._templates.get(dep.name, [])
            outcomes = [Outcome(s.state, s.ever_started, s.reason, s.service_ready) for s in group]
            verdict, why = readiness(dep.condition, outcomes)
            if verdict == "skip":
                return "skip", f"dependency {dep.name} {why} (needed: {dep.condition})"
            if verdict == "wait":
                found = "wait"
        return found, ""
