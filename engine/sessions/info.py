"""What a viewer, the summary and the scheduler learn about sessions: plain, frozen data.

Built by the Session itself (`Session.info()`), the one owner of the facts they copy.

A session runs one or more attempts (retries, operator restarts); each attempt keeps its
own timing and exit status so a flaky session's history stays visible after it succeeds.
"""

from __future__ import annotations

from pathlib import Path  # noqa: TC003 (pydantic needs it at runtime)

from pydantic import BaseModel, ConfigDict

from engine.states import SessionState  # noqa: TC001 (pydantic needs it at runtime)


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
    detail: str = ""
    """Beyond the state, for a live session: "ready" (a service passed its probe),
    "stopped (tty output)" / "stopped (tty input)" (job control stopped it)."""
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
    """The first and the latest attempts (engine/sessions/history.py bounds them)."""
    attempt_count: int = 0
    """Finished attempts, every one (more than `attempts` holds after many retries)."""
    queue_wait: float | None = None
    """Total time spent ready but not started, over every attempt."""
    run_time: float | None = None
    """Total time processes ran, over every attempt."""
    first_started_at: float | None = None
    attention: str = ""
    """Why it waits for the operator (idle, bell, notify, bus), "" when it does not."""
    attention_since: float | None = None
    attention_text: str = ""
    declared_size: bool = False
    """The deck declares its cols/rows: the PTY keeps them whatever the rooms' panes."""
    daemon: bool = False
    """A service that does not hold the run open; stopped when the rest is final."""
