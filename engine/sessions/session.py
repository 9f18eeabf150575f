"""A session: one command on one terminal, and the single writer of its state.

The scheduler (engine/scheduling/scheduler.py) decides *when* a session runs; `run_attempt` owns one
attempt once admitted: lease a terminal, start the job, feed its output to the screen and
the recording (engine/sessions/records.py), wait for the exit, give the terminal back, then
write the attempt's files, settle the final state and record the attempt. The scheduler
moves it between attempts with `requeue`, or ends it unstarted with `skip` or `cancel`.
Operator commands (pause, resume, terminate, input, resize) act on the live job through
the terminal's process groups.

Size: the one writer of a session's state: every path that changes it (lease, follow, run,
stop, settle, retry) is here so its transitions read in one place; the hand-over is
follow.py, the files records.py, the info records info.py.
"""

from __future__ import annotations

import contextlib
import signal
import time
from typing import TYPE_CHECKING

import anyio
from anyio.lowlevel import checkpoint

from engine.errors import (
    HostLostError,
    InvalidTransitionError,
    SessionError,
    SwarmdeckError,
    TerminalError,
)
from engine.events import SessionAdded, SessionDetailChanged, SessionStateChanged
from engine.screen import Screen
from engine.sessions.attention import Attention
from engine.sessions.follow import Handover, HandoverPhase
from engine.sessions.history import AttemptHistory
from engine.sessions.info import AttemptInfo, SessionInfo
from engine.sessions.job import Attempt, fresh_job, session_job, working_dir
from engine.sessions.probe import ReadyProbe
from engine.sessions.records import SessionRecords
from engine.states import ENDINGS, FINAL_STATES, Ending, SessionState, can_transition
from engine.terminals.fresh import FreshTerminal
from engine.terminals.pooled import REPORT_GRACE, Follow, PooledTerminal
from engine.terminals.terminal import Ended, ExitStatus, Job

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from anyio.abc import TaskGroup

    from engine.deck.spec import DeckSpec, SessionSpec
    from engine.events import Event
    from engine.terminals.channel import JobRun
    from engine.terminals.hosts.host_pool import HostTerminal
    from engine.terminals.hosts.remote_pooled import RemotePooledTerminal
    from engine.terminals.pool import TerminalPool
    from engine.terminals.terminal import Terminal

__all__ = ["Replica", "Session", "SessionInfo"]

S = SessionState
Replica = tuple[int, int]
"""(index, count): replica `index` (from 1) of `count` copies of one template."""


HANGUP_AFTER = 0.2
"""Seconds a program waiting at its prompt gets to honour the stop signal before it is hung
up, as a closing terminal would: an interactive shell ignores SIGTERM, and would otherwise
hold every stop (and the engine's) for the whole stop_grace."""


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
        self.attempts = AttemptHistory()
        self.restarts = 0
        self.waiting_for_start = False
        """autostart = false, and no operator has started it (see SessionInfo)."""
        """Set by the scheduler: how often the `restart` policy started it again."""
        self._attempt_open = False  # an admitted attempt not yet recorded in `attempts`
        self.attempt_number = 1  # of the current (or last) attempt, fixed when it begins
        self._screen_attempt = 1  # the attempt the screen was last started for
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
        self.terminal: Terminal | HostTerminal | None = None
        self._reply_to: Terminal | HostTerminal | None = None  # where answers go
        self._lost: str | None = None  # its host dropped under the attempt (docs/hosts.md)
        self.placed_on: str | None = None
        """The [[host]] the scheduler placed its attempt on (engine/scheduling/places.py)."""
        self.handover: Handover | None = None  # as a follower, until its attempt ends
        self._on_start: Callable[[], None] | None = None
        self.queued_at = time.time()
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.ending = Ending.NONE
        self._stop_reason = "stopped by operator"
        self._exited = anyio.Event()
        self._reported = anyio.Event()  # the job's end is known (its terminal may be lost)
        self._queue_scope: anyio.CancelScope | None = None
        self._records = SessionRecords(run_dir / "sessions", spec.name, deck.record.rotation)
        self._tg: TaskGroup | None = None
        self._focused = False  # an operator room types into it: its terminal goes first
        self.attention = Attention(spec.name, spec.attention, emit)
        self.detail = ""  # SessionInfo.detail: "ready", "stopped (tty output)"
        self.service_ready = False  # its `ready` probe passed in this attempt
        self.on_ready: Callable[[], None] | None = None  # the scheduler: dependents may start
        self._probe: ReadyProbe | None = None
        self._not_ready = ""  # why the probe's timeout stopped it

    # -- the one writer of state ----------------------------------------------------------
    def _set_state(self, new: SessionState, reason: str = "") -> None:
        if not can_transition(self.state, new):
            raise InvalidTransitionError(self.name, self.state, new)
        old, self.state, self.reason = self.state, new, reason
        if new in FINAL_STATES and self._attempt_open:  # before the event: viewers see it
            self.attempts.append(self._attempt_record())
            self._attempt_open = False
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
        if new is not S.ACTIVE:  # paused or over: it no longer waits for anyone
            self.attention.clear()

    def _set_detail(self, detail: str) -> None:
        if detail != self.detail:
            self.detail = detail
            self._emit(SessionDetailChanged(session=self.name, detail=detail))

    def note_tty_stops(self, stops: Mapping[int, str]) -> None:
        """The sampler's look at job control (terminals/procs.py `tty_stops`): an active
        job part of which a tty access stopped says so ("stopped (tty output)"), since its
        state alone would say `active` while it can never go on by itself."""
        term = self.terminal
        if self.state is not S.ACTIVE or term is None or self.exit is not None:
            return
        why = stops.get(term.session_id or -1)
        self._set_detail(f"stopped ({why})" if why else "ready" if self.service_ready else "")

    def _end(self, ending: Ending, reason: str | None = None) -> None:
        """The one writer of `ending` (states.py ENDINGS); a weaker cause never replaces a
        stronger one: a timed-out session stays timing out when also stopped."""
        if ending in ENDINGS[self.ending]:
            self.ending = ending
        if ending is Ending.STOPPING and reason is not None and self.ending is ending:
            self._stop_reason = reason

    def line_up(self, follow: Follow) -> None:
        """The scheduler chose it to follow job `follow.pid`; its attempt starts next."""
        self.handover = Handover(follow)

    def drop_follow(self, stop_reason: str | None = None) -> None:
        """The scheduler takes a follower back: it returns to the queue, unless it has
        started meanwhile; then it is stopped with `stop_reason`, if one is given."""
        handover = self.handover
        if handover is None:
            return
        handover.late_stop = stop_reason
        if handover.phase is HandoverPhase.TAKING_OVER:
            if stop_reason is not None and self.state is not S.QUEUED and self.exit is None:
                self._end(Ending.STOPPING, stop_reason)
                if self._tg is not None:
                    self._tg.start_soon(self._stop)
        elif handover.run is not None:
            handover.follow.terminal.drop_follower(handover.run)
        else:
            handover.taken_back = True  # not sent yet: it never will be

    def warm_terminal(self) -> PooledTerminal | RemotePooledTerminal | None:
        """Its terminal if it is a warm one (here or on a host): only those take followers."""
        term = self.terminal
        if isinstance(term, PooledTerminal):
            return term
        if term is not None and term.kind == "remote" and term.warm:
            return term
        return None

    def can_be_followed(self) -> bool:
        """Running on a warm terminal, not stopping, with no follower yet."""
        term = self.warm_terminal()
        return (
            self.state is S.ACTIVE
            and self.exit is None
            and self.ending is Ending.NONE
            and term is not None
            and term.followable
        )

    @property
    def follower_dropped(self) -> bool:
        """A follower its launcher dropped (it comes back to the queue)."""
        return self.handover is not None and self.handover.phase is HandoverPhase.DROPPED

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def ever_started(self) -> bool:
        """A process of this session started at least once (any attempt)."""
        return self.started_at is not None or self.attempts.first_started_at is not None

    def announce(self, reason: str) -> None:
        """Tell viewers a session exists (a fork): its spec first, then its state (not a
        state change, so old is None)."""
        spec = self.spec.model_dump(mode="json", by_alias=True)
        added = SessionAdded(session=self.name, template=self.template, reason=reason, spec=spec)
        self._emit(added)
        self._emit(SessionStateChanged(session=self.name, old=None, new=self.state, reason=reason))

    # -- between attempts (called by the scheduler) ---------------------------------------
    def hold(self, reason: str) -> None:
        """autostart = false: queued, but waiting for an operator's start."""
        self.waiting_for_start = True
        self._note(reason)

    def release(self, reason: str) -> None:
        self.waiting_for_start = False
        self._note(reason)

    def _note(self, reason: str) -> None:
        """A new reason in the same state (still queued), told to viewers like a change."""
        self.reason = reason
        self._emit(
            SessionStateChanged(session=self.name, old=self.state, new=self.state, reason=reason)
        )

    def skip(self, reason: str) -> None:
        self._set_state(S.SKIPPED, reason)

    def cancel(self, reason: str) -> None:
        """End a queued session that was never admitted."""
        self._set_state(S.TERMINATED, reason)

    def requeue(self, reason: str) -> None:
        """Back to queued for another attempt (retry or restart); the screen is kept."""
        self.pid = self.exit = self.terminal = self._reply_to = self._lost = None
        self.started_at = self.ended_at = self.ready_at = None
        self.ending, self._stop_reason = Ending.NONE, "stopped by operator"  # a new attempt
        self.service_ready, self.detail, self._not_ready = False, "", ""
        self._exited, self._reported = anyio.Event(), anyio.Event()
        self.queued_at = time.time()
        self._set_state(S.QUEUED, reason)

    # -- lifecycle ------------------------------------------------------------------------
    async def run_attempt(
        self,
        pool: TerminalPool,
        tg: TaskGroup,
        on_exit: Callable[[], None] | None = None,
        follow: Follow | None = None,
        on_start: Callable[[], None] | None = None,
    ) -> None:
        """Run one admitted attempt to a final state; never raises for its own failures.

        `on_exit` runs once the process has exited 0 (the attempt will complete) and the
        terminal is back in the pool, before the attempt's files are written and its state
        settled: the scheduler starts the next session there, so creating the files overlaps
        that session's spawn. A failure may abort or halt the run, so it settles first.
        `on_start` runs once the job runs (the scheduler may then give it a follower).

        With `follow`, the attempt is the follower of the job running on that terminal: it
        starts the moment that job exits 0. If it is dropped instead (that job failed, or
        the scheduler took it back), no attempt was made and the session is still queued.
        """
        self._tg = tg
        self._on_start = on_start
        ready = self.spec.ready  # before the job starts: its first line may be the one
        self._probe = ReadyProbe(ready) if ready is not None else None
        self._attempt_open = True
        self.attempt_number = len(self.attempts) + 1
        self._begin_screen()
        try:
            if follow is not None:
                await self._follow_and_run(pool, follow, tg, on_exit)
            else:
                await self._lease_and_run(pool, tg, on_exit)
        finally:
            self._records.abandon()  # cancelled with the engine: keep what was recorded
            self._probe = None
            self._attempt_open = False
            self._exited.set()
            self.handover = None
            if self.state is S.QUEUED:  # a dropped follower: it will run later
                self._exited = anyio.Event()

    def _begin_screen(self) -> None:
        """A retry starts from a reset screen under a banner (once: a dropped follower
        comes back with the same attempt number), before any of its output can come."""
        number = self.attempt_number
        if number > 1 and self._screen_attempt != number:
            self._screen_attempt = number
            self.screen.start_over()
            self.screen.feed(f"\r\n--- attempt {number} ---\r\n".encode())
            self._on_screen(self.name)

    def fail_unstarted(self, reason: str) -> None:
        """An admitted attempt that could not begin (no workspace); recorded as an attempt."""
        self._attempt_open = True
        self.attempt_number = len(self.attempts) + 1
        self._set_state(S.FAILED, reason)

    async def _lease_and_run(
        self, pool: TerminalPool, tg: TaskGroup, on_exit: Callable[[], None] | None
    ) -> None:
        term: Terminal | HostTerminal | None = None
        if self.ending is not Ending.NONE:
            self._never_started()
            return
        with anyio.CancelScope() as self._queue_scope:
            try:
                if self.host is not None:
                    term = await pool.acquire_remote(self.host, self.spec.terminal)
                else:
                    term = await pool.acquire(self.spec.terminal)
            except SwarmdeckError as exc:
                self._set_state(S.FAILED, f"no terminal: {exc}")
                return
        self._queue_scope = None
        if term is None:
            self._never_started()
            return
        await self._hold(pool, term, tg, on_exit, followed=False)

    async def _follow_and_run(
        self,
        pool: TerminalPool,
        follow: Follow,
        tg: TaskGroup,
        on_exit: Callable[[], None] | None,
    ) -> None:
        """Wait as the follower of job `follow.pid` on `follow.terminal`; run once it
        exits 0."""
        term = follow.terminal
        if self.ending is not Ending.NONE:
            self._never_started()
            return
        number = self.attempt_number
        self._records.expect(term, number, self.cols, self.rows)
        self._reply_to = term
        handover = self.handover
        assert handover is not None, "the scheduler lines a follower up first"
        assert handover.follow is follow
        try:
            if handover.taken_back:
                raise TerminalError("the scheduler took it back before it was sent")
            job, discard = self._job_on(term), self._records.discard
            handover.run = term.follow(job, self._on_output, discard, after=follow.pid)
        except SwarmdeckError:
            self.pid = None  # its job ended meanwhile: the scheduler starts it elsewhere
        else:
            self.pid = await self._follower_fate(term, handover.run)
        if self.pid is None:
            self._records.discard()
            self._reply_to = None
            if handover.phase is HandoverPhase.TAKING_OVER:
                pool.release(term, reusable=False)  # handed over, then its launcher died
            if self.ending is not Ending.NONE:
                self._never_started()
            return
        if handover.late_stop is not None:  # the run was aborted as it started
            self._end(Ending.STOPPING, handover.late_stop)
        await self._hold(pool, term, tg, on_exit, followed=True)

    @property
    def host(self) -> str | None:
        """The [[host]] this attempt runs on: where the scheduler placed it, else replicas
        spread over the session's hosts in turn and each retry moves on to the next one
        (None: this machine)."""
        hosts = self.spec.hosts
        if not hosts:
            return None
        if self.placed_on is not None:
            return self.placed_on
        replica = self.replica[0] if self.replica else 1
        return hosts[(replica - 1 + max(self.attempt_number, 1) - 1) % len(hosts)]

    async def _hold(
        self,
        pool: TerminalPool,
        term: Terminal | HostTerminal,
        tg: TaskGroup,
        on_exit: Callable[[], None] | None,
        followed: bool,
    ) -> None:
        """Holding the terminal's lease: run the job (a follower's has started already),
        give the lease back (or on to this job's follower), then settle."""
        try:
            self.terminal = term
            term.focused = self._focused
            if followed:
                term.resize(self.cols, self.rows)  # the pane may have changed while it waited
            how = "following on" if followed else "on"
            where = f" on host {self.host}" if term.kind == "remote" else ""
            self._set_state(S.SPAWNING, f"{how} {term.kind} terminal #{term.id}{where}")
            ended = await self._run_on(term, tg, started=followed)
        finally:
            term.reset_priority()  # the next session on it does not inherit it
            pool.release(term, reusable=self.exit is not None, pid=self.pid)
        await self._finish(ended, on_exit)

    def _never_started(self) -> None:
        self._set_state(S.TERMINATED, f"{self._stop_reason} before it started")

    async def _follower_fate(
        self, term: PooledTerminal | RemotePooledTerminal, run: JobRun
    ) -> int | None:
        """The follower's pid once it started, or None if it was dropped; a stop request
        (terminate) while it waits drops it, unless it has started meanwhile."""
        try:
            with anyio.CancelScope() as self._queue_scope:
                try:
                    return await term.follower_started(run)
                except SwarmdeckError:
                    return None
        finally:
            self._queue_scope = None
        term.drop_follower(run)
        pid: int | None = None
        with anyio.CancelScope(shield=True), contextlib.suppress(SwarmdeckError):
            pid = await term.follower_started(run)
        return pid

    async def _finish(self, ended: Ended | None, on_exit: Callable[[], None] | None) -> None:
        """After the exit: let the next session start, then write the files and settle."""
        status = ended.status if ended is not None else None
        if on_exit is not None and status is not None and self._completes(status):
            on_exit()
            with anyio.CancelScope(shield=True):
                await checkpoint()  # let the next session dispatch first
        if ended is not None:
            await ended.drained()  # the job's last bytes, which may trail its exit report
        await self._close_records()
        if status is not None:
            self._settle(status)

    async def _run_on(
        self, term: Terminal | HostTerminal, tg: TaskGroup, started: bool = False
    ) -> Ended | None:
        """Start the job (unless it `started` as a follower) and wait for its end; None if
        it could not start (then failed). The terminal may take another job once this
        returns, while this one's last output is still on its way (`Ended.drained`)."""
        number = self.attempt_number
        if not started:
            self._records.expect(term, number, self.cols, self.rows)
            self._reply_to = term
            try:
                await self._start(term, tg)
            except SwarmdeckError as exc:
                await self._records.open(number, self.cols, self.rows)
                self._set_state(S.FAILED, f"could not start: {exc}")
                return None
        self.started_at = term.job_started_at or time.time()
        self._set_state(S.ACTIVE, f"pid {self.pid}")
        if self.ending is not Ending.NONE:
            tg.start_soon(self._stop)
        elif self._on_start is not None:
            self._on_start()
        probing = self._start_probe(tg)
        await self._records.open(number, self.cols, self.rows)  # output is held meanwhile
        ended = await self._wait(term)
        probing.cancel()
        self._probe = None
        self.exit, self.ended_at = ended.status, ended.ended_at
        self._reported.set()
        return ended

    def _start_probe(self, tg: TaskGroup) -> anyio.CancelScope:
        """A service's readiness probe runs alongside the attempt (cancelled as it ends)."""
        scope = anyio.CancelScope()
        if self._probe is not None:
            tg.start_soon(self._await_ready, self._probe, scope)
        return scope

    async def _await_ready(self, probe: ReadyProbe, scope: anyio.CancelScope) -> None:
        """Ready: dependents waiting on "ready" may start. Not within the probe's timeout:
        the attempt fails like a timeout, saying what was missing."""
        with scope:
            with anyio.move_on_after(probe.spec.timeout):
                await probe.wait()
                self.service_ready = True
                self._set_detail("ready")
                if self.on_ready is not None:
                    self.on_ready()
                return
            if self.ending is Ending.NONE:  # not already on its way out
                missing = probe.missing() or "still probing"
                self._not_ready = f"not ready within {probe.spec.timeout:g}s: {missing}"
                self._end(Ending.TIMING_OUT)
                assert self._tg is not None
                self._tg.start_soon(self._stop)

    def _job(self) -> Job:
        attempt = Attempt(self.attempt_number, self.replica, self.workspace, self.cols, self.rows)
        extra = self._extra_env(self.name) if self._extra_env is not None else {}
        return session_job(self.spec, self.deck, self.run_dir, attempt, extra)

    def _job_on(self, term: Terminal | HostTerminal) -> Job:
        job = self._job()
        if term.kind == "remote":  # the host's own sh, its home directory (docs/hosts.md)
            return Job(self.spec.argv("sh"), job.env, None, job.cols, job.rows)
        return job

    async def _start(self, term: Terminal | HostTerminal, tg: TaskGroup) -> None:
        job = self._job_on(term)
        if term.kind == "remote":
            self.pid = await term.start(job, self._on_output, tg)
        elif isinstance(term, PooledTerminal):
            self.pid = await term.start(job, self._on_output)
        else:
            assert isinstance(term, FreshTerminal)
            self.pid = await term.start(fresh_job(job, self.deck.pool), self._on_output, tg)

    async def _wait(self, term: Terminal | HostTerminal) -> Ended:
        timeout = self.spec.timeout if self.spec.timeout else float("inf")
        with anyio.move_on_after(timeout) as scope:
            return await self._exit_of(term)
        if scope.cancelled_caught:
            self._end(Ending.TIMING_OUT)
            assert self._tg is not None
            self._tg.start_soon(self._stop)
        return await self._exit_of(term)

    async def _exit_of(self, term: Terminal | HostTerminal) -> Ended:
        """The job's end; if its terminal died (or was given up), how it ended is unknown."""
        try:
            return await term.wait_exit(self.pid)
        except HostLostError as exc:
            self._lost = str(exc)
            return Ended(ExitStatus(None), _nothing_more, time.time())
        except TerminalError:
            return Ended(ExitStatus(None), _nothing_more, time.time())

    def _completes(self, status: ExitStatus) -> bool:
        return status.ok and self.ending is Ending.NONE

    def _settle(self, status: ExitStatus) -> None:
        self.service_ready = False
        self._set_detail("")
        if self.ending is Ending.TIMING_OUT and self._not_ready:
            self._set_state(S.FAILED, f"{self._not_ready} ({status.describe()})")
        elif self.ending is Ending.TIMING_OUT:
            self._set_state(S.FAILED, f"timeout after {self.spec.timeout:g}s ({status.describe()})")
        elif self.ending is Ending.STOPPING:
            self._set_state(S.TERMINATED, f"{self._stop_reason} ({status.describe()})")
        elif self._lost is not None:
            self._set_state(S.LOST, self._lost)
        elif status.ok:
            self._set_state(S.COMPLETED, status.describe())
        else:
            self._set_state(S.FAILED, status.describe())

    def _on_output(self, data: bytes) -> None:
        text = self._records.output(data)
        if self._probe is not None:
            self._probe.feed(text)
        screen = self.screen
        replies = screen.feed_text(text)
        term = self._reply_to
        self.attention.output(time.monotonic(), term is not None and term.interactive())
        if screen.signals:  # a bell or a notification (one dict check per chunk)
            self.attention.signalled(screen.take_signals())
        # Once the job has exited, its terminal may already run the next session's job:
        # answers to the ended job's last queries must not become that job's input.
        if replies and self.exit is None and term is not None:
            term.answer(replies)
        self._on_screen(self.name)

    def flush_recording(self) -> None:
        """Push buffered output to disk, so a quiet session's last words are not held back."""
        self._records.flush()

    async def _close_records(self) -> None:
        exit_info: dict[str, object] = {
            "session": self.name,
            "attempt": self.attempt_number,
            "exit_code": self.exit.code if self.exit else None,
            "signal": self.exit.signal if self.exit else None,
            "timed_out": self.ending is Ending.TIMING_OUT,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
        }
        await self._records.close(self.attempt_number, self.screen, exit_info)

    # -- operator commands ----------------------------------------------------------------
    def _require(self, *states: SessionState) -> Terminal | HostTerminal:
        if self.state not in states or self.terminal is None or self.exit is not None:
            allowed = ", ".join(states)
            raise SessionError(f"session {self.name!r} is {self.state}; this needs {allowed}")
        return self.terminal

    async def pause(self) -> None:
        await self._require(S.ACTIVE).pause_job(self.pid)
        self._set_state(S.PAUSED, "SIGSTOP")

    async def resume(self) -> None:
        await self._require(S.PAUSED).resume_job(self.pid)
        self._set_state(S.ACTIVE, "SIGCONT")

    async def terminate(self, reason: str = "stopped by operator") -> None:
        """Stop an admitted session: one still leasing never starts, a live one gets the
        stop signal (SIGKILL after stop_grace). Queued, unadmitted ones go through `cancel`."""
        if self.final:
            raise SessionError(f"session {self.name!r} already {self.state}")
        if self.exit is not None:  # exited, settling; its terminal may serve another session
            await self._exited.wait()
            return
        self._end(Ending.STOPPING, reason)
        if self.state is S.QUEUED:
            if self._queue_scope is not None:
                self._queue_scope.cancel()
        elif self.state in (S.ACTIVE, S.PAUSED):
            await self._stop()
        await self._exited.wait()

    async def _stop(self) -> None:
        term = self.terminal
        if term is None or self._exited.is_set() or self.exit is not None:
            return
        warm = self.warm_terminal()
        if warm is not None:
            warm.drop_next()  # a job being stopped may still exit 0: it gets no follower
        at_prompt = term.waits_for_keys()
        term.signal_job(self.spec.stop_signal, self.pid)
        term.signal_job(signal.SIGCONT, self.pid)  # a stopped process cannot act on SIGTERM
        grace = self.spec.stop_grace
        if at_prompt and grace > HANGUP_AFTER:
            if await self._ends_within(HANGUP_AFTER):
                return
            term.signal_job(signal.SIGHUP, self.pid)  # a terminal closing: ends `bash -i`
            grace -= HANGUP_AFTER
        if await self._ends_within(grace):
            return
        term.signal_job(signal.SIGKILL, self.pid)
        if warm is not None and not await self._ends_within(REPORT_GRACE):
            await warm.abandon()  # its launcher is wedged: the job's end will never be told

    async def _ends_within(self, seconds: float) -> bool:
        """Whether the job's end is known within `seconds`."""
        with anyio.move_on_after(seconds):
            await self._reported.wait()
        return self._reported.is_set() or self._exited.is_set()

    @property
    def focused(self) -> bool:
        return self._focused

    def focus(self, focused: bool) -> None:
        """An operator room types into this session (or stopped): its output goes first."""
        self._focused = self.attention.watched = focused
        if focused:
            self.attention.acknowledge()
        if self.terminal is not None and self.exit is None:  # not once it serves another
            self.terminal.focused = focused

    def interactive(self) -> bool:
        """Focused, or typed into in the last second (engine/terminals/terminal.py)."""
        term = self.terminal
        return self._focused or (term is not None and self.exit is None and term.interactive())

    async def send_input(self, data: bytes) -> None:
        await self._require(S.ACTIVE, S.PAUSED).write(data)
        self.attention.acknowledge()

    def check_idle(self, now: float) -> None:
        """Mark it as waiting when quiet at a prompt (engine/sessions/attention.py)."""
        term = self.terminal
        if self.state is S.ACTIVE and term is not None and self.exit is None:
            self.attention.check_idle(now, term.waits_for_keys)

    def resize_for_pane(self, cols: int, rows: int, deliberate: bool = False) -> None:
        """A room's pane is `cols`x`rows`. A size the deck declares (the session's `cols`,
        `rows`) wins, so its program and recording see what the deck says whatever the
        room's layout; the pane clips its view. Only a deliberate resize (the operator
        zoomed) overrides it, and the next pane size that is not deliberate restores it."""
        if not deliberate:
            cols, rows = self.spec.cols or cols, self.spec.rows or rows
        self.resize(cols, rows)

    def resize(self, cols: int, rows: int) -> None:
        if (cols, rows) == (self.cols, self.rows):
            return
        self.cols, self.rows = cols, rows
        self.screen.resize(cols, rows)
        if self.terminal is not None:  # a waiting follower's relay still records its host
            self._records.resize(cols, rows)
        if self.terminal is not None and self.exit is None and not self.final:
            self.terminal.resize(cols, rows)
        self._on_screen(self.name)

    def info(self) -> SessionInfo:
        spec, exit = self.spec, self.exit
        return SessionInfo(
            name=self.name,
            state=self.state,
            reason=self.reason,
            command=spec.command if isinstance(spec.command, str) else " ".join(spec.command),
            pid=self.pid,
            terminal=spec.terminal,
            terminal_id=self.terminal.id if self.terminal else None,
            exit_code=exit.code if exit else None,
            signal=exit.signal if exit else None,
            queued_at=self.queued_at,
            started_at=self.started_at,
            ended_at=self.ended_at,
            title=self.screen.title,
            cols=self.cols,
            rows=self.rows,
            priority=spec.priority,
            critical=spec.critical,
            template=self.template,
            replica=self.replica[0] if self.replica else None,
            depends_on=tuple(d.name for d in spec.depends_on),
            workspace=working_dir(spec, self.deck, self.workspace),
            attempts=self.attempts.kept(),
            attempt_count=len(self.attempts),
            restarts=self.restarts,
            waiting_for_start=self.waiting_for_start,
            queue_wait=self.attempts.queue_wait,
            run_time=self.attempts.run_time,
            first_started_at=self.attempts.first_started_at,
            attention=self.attention.reason,
            attention_since=self.attention.since,
            attention_text=self.attention.text,
            detail=self.detail,
            daemon=spec.daemon,
            declared_size=spec.cols is not None or spec.rows is not None,
        )

    def _attempt_record(self) -> AttemptInfo:
        """The attempt a session has just finished (it is in a final state)."""
        ended = self.ended_at or time.time()
        start, ready = self.started_at, self.ready_at
        return AttemptInfo(
            number=self.attempt_number,
            state=self.state,
            reason=self.reason,
            exit_code=self.exit.code if self.exit else None,
            signal=self.exit.signal if self.exit else None,
            ready_at=ready,
            started_at=start,
            ended_at=ended,
            queue_wait=(start or ended) - ready if ready else None,
            run_time=ended - start if start is not None else None,
        )


async def _nothing_more() -> None:
    """A lost terminal's output has ended with it."""
