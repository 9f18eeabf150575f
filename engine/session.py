"""A session: one command on one terminal, and the single writer of its state.

The scheduler (engine/scheduler.py) decides *when* a session runs; `run_attempt` owns one
attempt once admitted: lease a terminal, start the job, feed its output to the screen and
the recording, wait for the exit, settle the final state and record the attempt. The
scheduler moves it between attempts with `requeue`, or ends it unstarted with `skip` or
`cancel`. Operator commands (pause, resume, terminate, input, resize) act on the live job
through the terminal's process groups.
"""

from __future__ import annotations

import codecs
import json
import signal
import time
from typing import TYPE_CHECKING

import anyio

from engine.attempt import AttemptInfo, SessionInfo
from engine.errors import InvalidTransitionError, SessionError, SwarmdeckError
from engine.events import SessionStateChanged
from engine.recorder import CastWriter, save_screen
from engine.screen import Screen
from engine.states import FINAL_STATES, SessionState, can_transition
from engine.terminal import ExitStatus, FreshTerminal, Job, PooledTerminal, Terminal, base_env

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from anyio.abc import TaskGroup

    from engine.events import Event
    from engine.pool import TerminalPool
    from engine.spec import DeckSpec, SessionSpec

__all__ = ["Replica", "Session", "SessionInfo"]

S = SessionState
Replica = tuple[int, int]
"""(index, count): replica `index` (from 1) of `count` copies of one template."""


class Session:
    def __init__(
        self,
        spec: SessionSpec,
        deck: DeckSpec,
        run_dir: Path,
        emit: Callable[[Event], None],
        on_screen: Callable[[str], None],
        extra_env: Callable[[str], dict[str, str]] | None = None,
        *,
        template: str | None = None,
        replica: Replica | None = None,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.template = template or spec.name
        self.replica = replica
        self.workspace: Path | None = None
        self.attempts: list[AttemptInfo] = []
        self.ready_at: float | None = None
        self.deck = deck
        self.run_dir = run_dir
        self._emit = emit
        self._on_screen = on_screen
        self._extra_env = extra_env
        self.state = S.QUEUED
        self.reason = ""
        self.pid: int | None = None
        self.exit: ExitStatus | None = None
        self.cols = spec.cols or deck.pool.cols
        self.rows = spec.rows or deck.pool.rows
        self.screen = Screen(self.cols, self.rows, deck.pool.scrollback)
        self.terminal: Terminal | None = None
        self.queued_at = time.time()
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self._stop_requested = False
        self._stop_reason = "stopped by operator"
        self._timed_out = False
        self._exited = anyio.Event()
        self._queue_scope: anyio.CancelScope | None = None
        self._cast: CastWriter | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._tg: TaskGroup | None = None

    # -- the one writer of state ----------------------------------------------------------
    def _set_state(self, new: SessionState, reason: str = "") -> None:
        if not can_transition(self.state, new):
            raise InvalidTransitionError(self.name, self.state, new)
        old, self.state, self.reason = self.state, new, reason
        self._emit(
            SessionStateChanged(
                session=self.name,
                old=old,
                new=new,
                reason=reason,
                pid=self.pid,
                exit_code=self.exit.code if self.exit else None,
                signal=self.exit.signal if self.exit else None,
            )
        )

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def ever_started(self) -> bool:
        """A process of this session started at least once (any attempt)."""
        return self.started_at is not None or any(a.started_at for a in self.attempts)

    def announce(self, reason: str) -> None:
        """Tell viewers a session exists (a fork); not a state change, so old is None."""
        self._emit(SessionStateChanged(session=self.name, old=None, new=self.state, reason=reason))

    # -- between attempts (called by the scheduler) ---------------------------------------
    def skip(self, reason: str) -> None:
        self._set_state(S.SKIPPED, reason)

    def cancel(self, reason: str) -> None:
        """End a queued session that was never admitted."""
        self._set_state(S.TERMINATED, reason)

    def requeue(self, reason: str) -> None:
        """Back to queued for another attempt (retry or restart); the screen is kept."""
        self.pid = self.exit = self.terminal = None
        self.started_at = self.ended_at = self.ready_at = None
        self._stop_requested = self._timed_out = False
        self._stop_reason = "stopped by operator"
        self._decoder.reset()
        self._exited = anyio.Event()
        self.queued_at = time.time()
        self._set_state(S.QUEUED, reason)

    # -- lifecycle ------------------------------------------------------------------------
    async def run_attempt(self, pool: TerminalPool, tg: TaskGroup) -> None:
        """Run one admitted attempt to a final state; never raises for its own failures."""
        self._tg = tg
        try:
            await self._lease_and_run(pool, tg)
        finally:
            if self._cast is not None:  # cancelled with the engine: keep what was recorded
                self._cast.close()
                self._cast = None
            self._record_attempt()
            self._exited.set()

    def fail_unstarted(self, reason: str) -> None:
        """An admitted attempt that could not begin (no workspace); recorded as an attempt."""
        self._set_state(S.FAILED, reason)
        self._record_attempt()

    def _record_attempt(self) -> None:
        if not self.final:
            return
        now = time.time()
        ended = self.ended_at or now
        start = self.started_at
        self.attempts.append(
            AttemptInfo(
                number=len(self.attempts) + 1,
                state=self.state,
                reason=self.reason,
                exit_code=self.exit.code if self.exit else None,
                signal=self.exit.signal if self.exit else None,
                ready_at=self.ready_at,
                started_at=start,
                ended_at=ended,
                queue_wait=(start or ended) - self.ready_at if self.ready_at else None,
                run_time=ended - start if start is not None else None,
            )
        )

    async def _lease_and_run(self, pool: TerminalPool, tg: TaskGroup) -> None:
        term: Terminal | None = None
        if self._stop_requested:
            self._set_state(S.TERMINATED, f"{self._stop_reason} before it started")
            return
        with anyio.CancelScope() as self._queue_scope:
            try:
                term = await pool.acquire(self.spec.terminal)
            except SwarmdeckError as exc:
                self._set_state(S.FAILED, f"no terminal: {exc}")
                return
        self._queue_scope = None
        if term is None:
            self._set_state(S.TERMINATED, f"{self._stop_reason} before it started")
            return
        try:
            await self._run_on(term, tg)
        finally:
            pool.release(term, reusable=self.exit is not None)

    async def _run_on(self, term: Terminal, tg: TaskGroup) -> None:
        self.terminal = term
        self._set_state(S.SPAWNING, f"on {term.kind} terminal #{term.id}")
        sessions_dir = self.run_dir / "sessions"
        sessions_dir.mkdir(parents=True, exist_ok=True)
        number = len(self.attempts) + 1
        if number > 1:
            self.screen.feed(f"\r\n\x1b[0m--- attempt {number} ---\r\n".encode())
        self._cast = CastWriter(
            sessions_dir / f"{self._file_stem()}.cast",
            self.cols,
            self.rows,
            self.name,
            {"TERM": "xterm-256color"},
        )
        try:
            await self._start(term, tg)
        except SwarmdeckError as exc:
            self._set_state(S.FAILED, f"could not start: {exc}")
            self._close_records()
            return
        self.started_at = time.time()
        self._set_state(S.ACTIVE, f"pid {self.pid}")
        if self._stop_requested:
            tg.start_soon(self._stop)
        status = await self._wait(term)
        self.exit = status
        self.ended_at = time.time()
        self._close_records()
        self._settle(status)

    async def _start(self, term: Terminal, tg: TaskGroup) -> None:
        job = self._job()
        if isinstance(term, PooledTerminal):
            self.pid = await term.start(job, self._on_output)
        else:
            assert isinstance(term, FreshTerminal)
            argv = job.argv
            if self.deck.pool.init.strip():
                script = self.deck.pool.init + '\nexec "$@"'
                argv = [self.deck.pool.shell, "-c", script, "swarmdeck", *argv]
            job = Job(argv, job.env, job.cwd, job.cols, job.rows)
            term.resize(self.cols, self.rows)
            self.pid = await term.start(job, self._on_output, tg, base_env())

    def _job(self) -> Job:
        env = dict(self.spec.env)
        env.update(
            SWARMDECK_SESSION=self.name,
            SWARMDECK_RUN_DIR=str(self.run_dir),
            SWARMDECK_ATTEMPT=str(len(self.attempts) + 1),
            TERM="xterm-256color",
        )
        if self.replica is not None:
            env.update(
                SWARMDECK_REPLICA=str(self.replica[0]), SWARMDECK_REPLICAS=str(self.replica[1])
            )
        if self.workspace is not None:
            env.update(SWARMDECK_WORKSPACE=str(self.workspace))
        if self._extra_env is not None:
            env.update(self._extra_env(self.name))
        cwd = self.workspace or self.spec.cwd or self.deck.directory
        return Job(self.spec.argv(self.deck.pool.shell), env, str(cwd), self.cols, self.rows)

    async def _wait(self, term: Terminal) -> ExitStatus:
        timeout = self.spec.timeout if self.spec.timeout else float("inf")
        with anyio.move_on_after(timeout) as scope:
            return await term.wait()
        if scope.cancelled_caught:
            self._timed_out = True
            assert self._tg is not None
            self._tg.start_soon(self._stop)
        return await term.wait()

    def _settle(self, status: ExitStatus) -> None:
        if self._timed_out:
            self._set_state(S.FAILED, f"timeout after {self.spec.timeout:g}s ({status.describe()})")
        elif self._stop_requested:
            self._set_state(S.TERMINATED, f"{self._stop_reason} ({status.describe()})")
        elif status.ok:
            self._set_state(S.COMPLETED, status.describe())
        else:
            self._set_state(S.FAILED, status.describe())

    def _on_output(self, data: bytes) -> None:
        replies = self.screen.feed(data)
        if replies and self.terminal is not None and self._tg is not None:
            self._tg.start_soon(self.terminal.write, replies)
        if self._cast is not None:
            self._cast.output(self._decoder.decode(data))
        self._on_screen(self.name)

    def flush_recording(self) -> None:
        """Push buffered output to disk, so a quiet session's last words are not held back."""
        if self._cast is not None:
            self._cast.flush()

    def _file_stem(self) -> str:
        """`name` for the first attempt, `name.attempt-N` for later ones."""
        number = len(self.attempts) + 1
        return self.name if number == 1 else f"{self.name}.attempt-{number}"

    def _close_records(self) -> None:
        if self._cast is not None:
            self._cast.output(self._decoder.decode(b"", final=True))
            self._cast.close()
            self._cast = None
        directory = self.run_dir / "sessions"
        save_screen(directory, self.name, self.screen)
        exit_info = {
            "session": self.name,
            "attempt": len(self.attempts) + 1,
            "exit_code": self.exit.code if self.exit else None,
            "signal": self.exit.signal if self.exit else None,
            "timed_out": self._timed_out,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
        }
        (directory / f"{self._file_stem()}.exit.json").write_text(
            json.dumps(exit_info, indent=2) + "\n"
        )

    # -- operator commands ----------------------------------------------------------------
    def _require(self, *states: SessionState) -> Terminal:
        if self.state not in states or self.terminal is None:
            allowed = ", ".join(states)
            raise SessionError(f"session {self.name!r} is {self.state}; this needs {allowed}")
        return self.terminal

    async def pause(self) -> None:
        await self._require(S.ACTIVE).pause_job()
        self._set_state(S.PAUSED, "SIGSTOP")

    async def resume(self) -> None:
        await self._require(S.PAUSED).resume_job()
        self._set_state(S.ACTIVE, "SIGCONT")

    async def terminate(self, reason: str = "stopped by operator") -> None:
        """Stop an admitted session: one still leasing never starts, a live one gets the
        stop signal (SIGKILL after stop_grace). Queued, unadmitted ones go through `cancel`."""
        if self.final:
            raise SessionError(f"session {self.name!r} already {self.state}")
        self._stop_requested = True
        self._stop_reason = reason
        if self.state is S.QUEUED:
            if self._queue_scope is not None:
                self._queue_scope.cancel()
        elif self.state in (S.ACTIVE, S.PAUSED):
            await self._stop()
        await self._exited.wait()

    async def _stop(self) -> None:
        term = self.terminal
        if term is None or self._exited.is_set():
            return
        term.signal_job(self.spec.stop_signal)
        term.signal_job(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        with anyio.move_on_after(self.spec.stop_grace):
            await self._exited.wait()
        if not self._exited.is_set() and self.exit is None:
            term.signal_job(signal.SIGKILL)

    async def send_input(self, data: bytes) -> None:
        await self._require(S.ACTIVE, S.PAUSED).write(data)

    def resize(self, cols: int, rows: int) -> None:
        if (cols, rows) == (self.cols, self.rows):
            return
        self.cols, self.rows = cols, rows
        self.screen.resize(cols, rows)
        if self._cast is not None:
            self._cast.resize(cols, rows)
        if self.terminal is not None and not self.final:
            self.terminal.resize(cols, rows)
        self._on_screen(self.name)

    def info(self) -> SessionInfo:
        cmd = self.spec.command
        return SessionInfo(
            name=self.name,
            state=self.state,
            reason=self.reason,
            command=cmd if isinstance(cmd, str) else " ".join(cmd),
            pid=self.pid,
            terminal=self.spec.terminal,
            terminal_id=self.terminal.id if self.terminal else None,
            exit_code=self.exit.code if self.exit else None,
            signal=self.exit.signal if self.exit else None,
            queued_at=self.queued_at,
            started_at=self.started_at,
            ended_at=self.ended_at,
            title=self.screen.title,
            cols=self.cols,
            rows=self.rows,
            priority=self.spec.priority,
            critical=self.spec.critical,
            template=self.template,
            replica=self.replica[0] if self.replica else None,
            depends_on=tuple(d.name for d in self.spec.depends_on),
            workspace=self.workspace or self.spec.cwd or self.deck.directory,
            attempts=tuple(self.attempts),
        )
