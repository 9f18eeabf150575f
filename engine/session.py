"""A session: one command on one terminal, and the single writer of its state.

The runner (`run`) owns the lifecycle of an attempt: wait for a slot, lease a terminal,
start the job, feed its output to the screen and the recording, wait for the exit, and
settle the final state. Operator commands (pause, resume, terminate, input, resize) act
on the live job through the terminal's process groups.
"""

from __future__ import annotations

import codecs
import json
import signal
import time
from typing import TYPE_CHECKING

import anyio
from pydantic import BaseModel, ConfigDict

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

S = SessionState


class SessionInfo(BaseModel):
    """What a viewer needs to list a session; plain data."""

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


class Session:
    def __init__(
        self,
        spec: SessionSpec,
        deck: DeckSpec,
        run_dir: Path,
        emit: Callable[[Event], None],
        on_screen: Callable[[str], None],
        extra_env: Callable[[str], dict[str, str]] | None = None,
    ) -> None:
        self.spec = spec
        self.name = spec.name
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

    # -- lifecycle ------------------------------------------------------------------------
    async def run(self, pool: TerminalPool, limiter: anyio.CapacityLimiter, tg: TaskGroup) -> None:
        """Run one attempt to a final state; never raises for the session's own failures."""
        self._tg = tg
        try:
            with anyio.CancelScope() as self._queue_scope:
                await limiter.acquire()
            if self._queue_scope.cancelled_caught:
                self._set_state(S.TERMINATED, "stopped before it started")
                return
            try:
                await self._lease_and_run(pool, tg)
            finally:
                limiter.release()
        finally:
            self._exited.set()

    async def _lease_and_run(self, pool: TerminalPool, tg: TaskGroup) -> None:
        term: Terminal | None = None
        with anyio.CancelScope() as self._queue_scope:
            try:
                term = await pool.acquire(self.spec.terminal)
            except SwarmdeckError as exc:
                self._set_state(S.FAILED, f"no terminal: {exc}")
                return
        self._queue_scope = None
        if term is None:
            self._set_state(S.TERMINATED, "stopped before it started")
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
        self._cast = CastWriter(
            sessions_dir / f"{self.name}.cast",
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
            TERM="xterm-256color",
        )
        if self._extra_env is not None:
            env.update(self._extra_env(self.name))
        cwd = self.spec.cwd or self.deck.directory
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
            self._set_state(S.TERMINATED, f"stopped by operator ({status.describe()})")
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

    def _close_records(self) -> None:
        if self._cast is not None:
            self._cast.output(self._decoder.decode(b"", final=True))
            self._cast.close()
            self._cast = None
        directory = self.run_dir / "sessions"
        save_screen(directory, self.name, self.screen)
        exit_info = {
            "session": self.name,
            "exit_code": self.exit.code if self.exit else None,
            "signal": self.exit.signal if self.exit else None,
            "timed_out": self._timed_out,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
        }
        (directory / f"{self.name}.exit.json").write_text(json.dumps(exit_info, indent=2) + "\n")

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

    async def terminate(self) -> None:
        """Stop the session: queued ones never start, live ones get the stop signal."""
        if self.final:
            raise SessionError(f"session {self.name!r} already {self.state}")
        self._stop_requested = True
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
        )
