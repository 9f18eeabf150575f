"""What a viewer, the summary and the scheduler learn about sessions: plain, frozen data.

A session runs one or more attempts (retries, operator restarts); each attempt keeps its
own timing and exit status so a flaky session's history stays visible after it succeeds.
"""

from __future__ import annotations

import time
from pathlib import Path  # noqa: TC003 (pydantic needs it at runtime)
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from engine.sessions.job import working_dir
from engine.states import SessionState  # noqa: TC001 (pydantic needs it at runtime)

if TYPE_CHECKING:
    from engine.sessions.session import Session


class AttemptInfo(BaseModel):
    """One run of the command. queue_wait runs from ready (dependencies met, backoff over)
    to the process start; run_time from the start to the exit."""

    model_config = ConfigDict(frozen=True)
    number: int
    state: SessionState
    reason: str
    exit_code: int | None
    signal: int | None
    ready_at: float | None
    started_at: float | None
    ended_at: float
    queue_wait: float | None
    run_time: float | None


class SessionInfo(BaseModel):
    """What a viewer needs to list a session."""

    model_config = ConfigDict(frozen=True)
    name: str
    state: SessionState
    reason: str
    command: str
    pid: int | None
    terminal: str
    terminal_id: int | None
    exit_code: int | None
    signal: int | None
    queued_at: float
    started_at: float | None
    ended_at: float | None
    title: str
    cols: int
    rows: int
    priority: str = "normal"
    critical: bool = False
    template: str = ""
    replica: int | None = None
    depends_on: tuple[str, ...] = ()
    workspace: Path | None = None
    attempts: tuple[AttemptInfo, ...] = ()

    @property
    def queue_wait(self) -> float | None:
        """Total time spent ready but not started, over every attempt."""
        waits = [a.queue_wait for a in self.attempts if a.queue_wait is not None]
        return sum(waits) if waits else None

    @property
    def run_time(self) -> float | None:
        """Total time processes ran, over every attempt."""
        times = [a.run_time for a in self.attempts if a.run_time is not None]
        return sum(times) if times else None


def attempt_info(session: Session) -> AttemptInfo:
    """The attempt a session has just finished (it is in a final state)."""
    ended = session.ended_at or time.time()
    start, ready = session.started_at, session.ready_at
    return AttemptInfo(
        number=session.attempt_number,
        state=session.state,
        reason=session.reason,
        exit_code=session.exit.code if session.exit else None,
        signal=session.exit.signal if session.exit else None,
        ready_at=ready,
        started_at=start,
        ended_at=ended,
        queue_wait=(start or ended) - ready if ready else None,
        run_time=ended - start if start is not None else None,
    )


def session_info(session: Session) -> SessionInfo:
    spec, exit = session.spec, session.exit
    return SessionInfo(
        name=session.name,
        state=session.state,
        reason=session.reason,
        command=spec.command if isinstance(spec.command, str) else " ".join(spec.command),
        pid=session.pid,
        terminal=spec.terminal,
        terminal_id=session.terminal.id if session.terminal else None,
        exit_code=exit.code if exit else None,
        signal=exit.signal if exit else None,
        queued_at=session.queued_at,
        started_at=session.started_at,
        ended_at=session.ended_at,
        title=session.screen.title,
        cols=session.cols,
        rows=session.rows,
        priority=spec.priority,
        critical=spec.critical,
        template=session.template,
        replica=session.replica[0] if session.replica else None,
        depends_on=tuple(d.name for d in spec.depends_on),
        workspace=working_dir(spec, session.deck, session.workspace),
        attempts=tuple(session.attempts),
    )
