"""The scheduler: which queued session starts next, and what follows when one ends.

A sliding window, never batches: whenever a slot frees (an attempt ends, a dependency is
met, a backoff elapses, the limit rises) the best ready sessions start at once, up to the
limit (`max_parallel`, at most the pool size, so a leased slot never waits in the pool).

* Places (engine/scheduling/places.py): `max_parallel` bounds the sessions on this
  machine; a session with `host` takes a slot of the least loaded up host of its list
  instead (each host: its pool.size). A session waiting for a full place holds back only
  sessions for that place (no head-of-line blocking across places).

* Ready and best: engine/scheduling/run_queue.py (dependencies met, no backoff pending; highest
  priority, then file order). Priority is strict: a low session waits while any higher one
  is ready, and only then (docs/scheduling.md).
* A slot is held from admission until the process ends; a session that exited 0 frees
  it before writing its files and settling, so the next one starts meanwhile.
* Followers: while every local slot is taken and local sessions are ready, each running
  job on a pooled terminal gets the best ready local session as its *follower*, which its
  launcher starts the moment that job exits 0, in the same slot, with no round trip
  through the engine (engine/terminals/pooled.py). A follower is still queued until then;
  it is dropped back into the queue if its job fails, is paused or stops, when the limit
  falls, or when a slot frees elsewhere while it waits (so it never waits behind a long
  job).
* Memory: a session starts only if the declared memory of the running ones plus its own
  fits `memory_budget`; the best ready session that does not fit holds back the ones
  behind it, so small sessions never starve a big one.
* Services: a session with `daemon = true` does not hold the run open. Once nothing else
  is queued or running, the daemons still running are stopped (reason `RUN_DONE`), which
  the verdict does not count against the run (scheduling/summary.py). A deck of daemons
  only is served until stopped. Dependents waiting on `condition = "ready"` are
  dispatched the moment a service's probe passes (`Session.on_ready`).
* An attempt that fails with retries left is re-queued after its backoff; a service with
  `restart = "always"` (or "on-failure", when it failed) is re-queued after its backoff
  without limit and never settles, so its ends count neither as outcomes nor toward
  `max_failure_rate`; the backoff grows while it keeps ending within `backoff.max`; a critical
  session's final failure aborts the run (queued ones skipped, running ones stopped); a
  failure rate over `max_failure_rate` halts it (queued ones skipped, running ones finish).

Size: admission, followers, retries and aborts share one slot account (reserved, holding,
memory); split up, modules would share that mutable state.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from typing import TYPE_CHECKING

import anyio

from engine.errors import SchedulerError, SessionError, WorkspaceError
from engine.events import ParallelismAdjusted, RunAborted
from engine.scheduling.contention import Contention
from engine.scheduling.figures import Figures
from engine.scheduling.parallelism import Adjustment, AutoParallelism, control
from engine.scheduling.places import Places
from engine.scheduling.run_queue import RunQueue
from engine.scheduling.summary import RUN_DONE
from engine.sessions.follow import HandoverPhase
from engine.sessions.job import working_dir
from engine.states import SessionState
from engine.statistics import SchedulerStatistics
from engine.terminals.pooled import Follow

if TYPE_CHECKING:
    from collections.abc import Callable

    from anyio.abc import TaskGroup

    from engine.deck.spec import DeckSpec, SessionSpec
    from engine.events import Event
    from engine.sessions.session import Replica, Session
    from engine.sessions.workspace import Workspaces
    from engine.statistics import ContentionStatistics
    from engine.terminals.pool import TerminalPool

    SessionFactory = Callable[[SessionSpec, str, Replica | None], Session]

S = SessionState
UNSUCCESSFUL = (S.FAILED, S.LOST)
"""Ends that count as failures: retried, restarted on-failure, abort a critical run. A lost
session (its host dropped) also counts as failed in the figures, until they get a field."""
HELD = "autostart = false: waiting for an operator's start"
NEVER_STARTED = "autostart = false: no operator started it"


def session_names(deck: DeckSpec) -> list[str]:
    """Every session the deck starts with, replicas expanded (``name#1..N``)."""
    return [
        spec.name if spec.replicas == 1 else f"{spec.name}#{index}"
        for spec in deck.sessions
        for index in range(1, spec.replicas + 1)
    ]


class Scheduler:
    def __init__(
        self,
        deck: DeckSpec,
        pool: TerminalPool,
        tg: TaskGroup,
        emit: Callable[[Event], None],
        make: SessionFactory,
        workspaces: Workspaces,
    ) -> None:
        self.deck, self.pool, self.workspaces = deck, pool, workspaces
        self._tg, self._emit, self._make = tg, emit, make
        self.sessions: dict[str, Session] = {}
        self._queue = RunQueue()
        self._retries_left: dict[str, int] = {}
        self._restart_streak: dict[str, int] = {}  # restarts since it last ran backoff.max
        self._running: set[Session] = set()  # admitted, attempt not yet settled
        self._holding: set[Session] = set()  # admitted, process not yet ended: the limit
        self._places = Places(deck.hosts)  # which of `_holding` hold a host's slot
        self._followers: dict[Session, Session] = {}  # running session -> its follower
        self._reserved: set[Session] = set()  # followers not started: memory counted
        self._dropping: set[Session] = set()  # followers asked back
        self._memory = 0
        self._retiring: set[Session] = set()  # daemons stopped because the run is done
        self.stopped_reason: str | None = None
        self._started = False
        self._auto = AutoParallelism(deck.parallel_limit) if deck.max_parallel == "auto" else None
        self._control = anyio.CancelScope()
        self.limit = self._auto.limit if self._auto else deck.parallel_limit
        self.limit_reason = f"fixed: max_parallel = {self.limit} in the deck"
        self.figures = Figures(deck.failure_window)
        self.contention = Contention()
        self._blocked: set[Session] = set()  # ready at the end of a dispatch, not admitted
        self._waited: dict[Session, bool] = {}  # admitted: did it wait for a slot?
        self._idle = anyio.Event()
        self._busy = anyio.Event()
        self.operator_stopped: str | None = None
        """Why the operator stopped the run while work was left (verdict: stopped)."""
        for spec in deck.sessions:
            self._expand(spec)

    def _expand(self, spec: SessionSpec) -> None:
        """Replicas ``name#1..N`` share the template's place in the order."""
        if spec.replicas == 1:
            self.add(self._make(spec, spec.name, None))
            return
        for index in range(1, spec.replicas + 1):
            copy = spec.model_copy(update={"name": f"{spec.name}#{index}"})
            self.add(self._make(copy, spec.name, (index, spec.replicas)))

    def add(self, session: Session, announce: str | None = None) -> None:
        """Queue a new session; it starts as soon as it is ready and best. A session made
        at run time is `announce`d once known (viewers look it up) and before it starts."""
        self.sessions[session.name] = session
        session.on_ready = self._dispatch
        self._retries_left[session.name] = session.spec.retries
        if announce is not None:
            session.announce(announce)
        self._queue.add(session)
        if announce is None and not session.spec.autostart:  # a fork or an add starts
            session.hold(HELD)
            self._queue.hold(session)
        self._dispatch()

    def start_held(self, session: Session) -> None:
        """An operator starts a session that waits for it (autostart = false)."""
        if not self._queue.release(session):
            raise SessionError(
                f"session {session.name!r} is {session.state} and not waiting for an "
                "operator's start (autostart = false); restart runs a final one again"
            )
        session.release("started by operator")
        self._dispatch()

    def start(self) -> None:
        """Begin starting sessions (idempotent)."""
        if self._started:
            return
        self._started = True
        self.contention.begin()
        if self._auto is not None:
            cores, ceiling = os.cpu_count(), self._auto.ceiling
            reason = f"auto: starting at min({cores} cores, pool size {ceiling})"
            self.limit_reason = reason
            self._emit(ParallelismAdjusted(old=self.deck.pool.size, new=self.limit, reason=reason))
            self._start_control()
        self._dispatch()

    def _start_control(self) -> None:
        assert self._auto is not None
        self._control = anyio.CancelScope()
        self._tg.start_soon(self._run_control, self._auto, self._control)

    async def _run_control(self, auto: AutoParallelism, scope: anyio.CancelScope) -> None:
        with scope:
            await control(auto, self._own_figures, self._adjust)

    def set_parallel(self, value: int | str, who: str = "operator") -> None:
        """Change max_parallel live: a number (1..the local pool's size) fixes it, "auto"
        hands it to the controller from the current level. It bounds local sessions only:
        a host's are bounded by its own pool.size."""
        ceiling = self.deck.pool.size
        if value == "auto":
            if self._auto is None:
                self._auto = AutoParallelism(ceiling)
                self._auto.limit = max(1, min(ceiling, self.limit))
                if self._started:
                    self._start_control()
            self._apply_limit(self._auto.limit, f"auto: handed over by the {who}")
            return
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= ceiling:
            raise SchedulerError(
                "max_parallel (sessions on this machine at once) must be a whole number "
                f"from 1 to the local pool size {ceiling} ([pool] size), or 'auto' "
                f"(got {value!r}); sessions on hosts are bounded by each host's pool.size"
            )
        if self._auto is not None:
            self._control.cancel()
            self._auto = None
        self._apply_limit(value, f"set to {value} by the {who}")

    def _apply_limit(self, new: int, reason: str) -> None:
        self._adjust(Adjustment(self.limit, new, reason))

    async def wait_idle(self) -> None:
        """Until nothing is queued or running (every session final)."""
        await self._idle.wait()

    async def wait_busy(self) -> None:
        """Until something is queued or running again (a restart, a fork)."""
        await self._busy.wait()

    @property
    def started(self) -> bool:
        return self._started

    @property
    def idle(self) -> bool:
        return self._idle.is_set()

    # -- deciding -------------------------------------------------------------------------
    def _dispatch(self) -> None:
        for follower in [f for f in self._reserved if _taking_over(f)]:
            self._take_slot(follower)
        if self._started:
            while self._classify():
                pass
            self._start_ready()
        self._update_idle()

    def _classify(self) -> bool:
        """Sort the queue; skip a hopeless session (True: classify again)."""
        hopeless = self._queue.classify()
        if hopeless is None:
            return False
        session, why = hopeless
        session.skip(why)
        self._settled(session)
        return True

    def _start_ready(self) -> None:
        """Best first, each where it may run: a session waiting for a full host holds back
        only sessions for that host, never local ones or another host's (a place fills
        up and never frees during one pass, so order within a place is kept)."""
        budget = self.deck.memory_budget
        down = self._down_hosts()
        local_waits = False  # the best local session waits: nothing local overtakes it
        for session in list(self._queue.ready):
            if self.stopped_reason is not None:
                break
            if session.spec.hosts:
                host = self._places.choose(session, down)
                if host is not None:
                    self._places.take(session, host)
                    session.placed_on = host
                    self._admit(session)
                continue
            memory = session.spec.memory or 0
            if local_waits or self._local_holding() >= self.limit:
                local_waits = True
                continue
            if budget is not None and self._memory + memory > budget:
                local_waits = True  # it waits for memory; nothing local overtakes it
                continue
            self._memory += memory
            self._admit(session)
        self._blocked.update(self._queue.ready)
        free = self.limit - self._local_holding()
        if free > 0 or self.stopped_reason is not None:
            self._drop_followers(free if self.stopped_reason is None else len(self._reserved))
        else:
            self._assign_followers()

    def _admit(self, session: Session) -> None:
        """It holds a slot (local, or the host's it was placed on) from now on."""
        self._queue.remove(session)
        self._running.add(session)
        self._holding.add(session)
        self._waited[session] = session in self._blocked
        self._blocked.discard(session)
        self._tg.start_soon(self._run, session, None)

    def _local_holding(self) -> int:
        """Sessions holding a local slot: what `max_parallel` bounds."""
        return len(self._holding) - self._places.remote

    def _down_hosts(self) -> set[str]:
        """Hosts not connected whose last attempt failed or dropped: placement skips them,
        and each is tried again in the background (its link's backoff paces it) so that
        sessions waiting for it start once it is back."""
        if not self._places.size or not any(s.spec.hosts for s in self._queue.ready):
            return set()
        down = {
            h.host
            for h in self.pool.host_statistics()
            if not h.connected and h.last_error is not None
        }
        if self.pool.hosts is not None:
            for host in down:
                self.pool.hosts.revive(host, self._dispatch)
        return down

    def _assign_followers(self) -> None:
        """Every local slot is taken: give running jobs the best ready local sessions as
        followers (sessions for hosts wait for their host's slots, never follow)."""
        budget = self.deck.memory_budget
        ready = self._local_ready()
        for leader in sorted(self._holding, key=lambda s: s.started_at or float("inf")):
            if not ready:
                return
            term = leader.warm_terminal()
            if leader in self._followers or self._places.holds(leader) or term is None:
                continue  # followed already, or on a host (whose slots are its own)
            if not leader.can_be_followed():
                continue
            if term.leases >= self.pool.spec.recycle_after:
                continue  # it retires after this job
            session = ready.pop(0)
            memory = session.spec.memory or 0
            if session.spec.terminal != "pooled" or session.attempts:
                return  # a fresh terminal or a retry waits for a free slot
            if budget is not None and self._memory + memory > budget:
                return
            self._queue.remove(session)
            self._running.add(session)
            self._reserved.add(session)
            self._memory += memory
            self._followers[leader] = session
            self._waited[session] = True  # every slot was taken
            self._blocked.discard(session)
            assert leader.pid is not None
            follow = Follow(term, leader.pid)
            session.line_up(follow)
            self._tg.start_soon(self._run, session, follow)

    def _drop_followers(self, count: int) -> None:
        """Ask the best `count` waiting followers back, to start where a slot is free (less
        those already on their way back)."""
        back = {f for f in self._reserved if f in self._dropping or f.follower_dropped}
        waiting = sorted(self._reserved - back, key=self._queue.rank)
        for session in waiting[: max(0, count - len(back))]:
            self._drop_one(session)

    def _update_idle(self) -> None:
        """Idle: nothing runs and nothing queued can start without an operator."""
        self._retire_daemons()
        stalled = not self._queue or (self._started and self._queue.stalled)
        if stalled and not self._running:
            self._idle.set()
            if self._busy.is_set():
                self._busy = anyio.Event()
        else:
            self._busy.set()
            if self._idle.is_set():
                self._idle = anyio.Event()

    def _retire_daemons(self) -> None:
        """Only daemons left, queued or running, and the run has other sessions: the
        run is done, so they are stopped (or never started). A session waiting for an
        operator's start (`autostart = false`) does not keep them: it may never come."""
        queued = [s for s in self._queue.queued() if not self._queue.held(s)]
        if not self._started or not (queued or self._running):
            return
        if any(not s.spec.daemon for s in (*queued, *self._running)):
            return
        if all(s.spec.daemon for s in self.sessions.values()):
            return  # nothing but services: they are the run
        for session in queued:
            self._queue.remove(session)
            session.cancel(f"{RUN_DONE} before it started")
        for session in self._running - self._retiring:
            self._retiring.add(session)
            self._tg.start_soon(self._stop, session, RUN_DONE)

    # -- one attempt and what follows -----------------------------------------------------
    async def _run(self, session: Session, follow: Follow | None) -> None:
        try:
            await self._prepare(session)
            if not session.final:
                await session.run_attempt(
                    self.pool,
                    self._tg,
                    lambda: self._exited(session),
                    follow,
                    lambda: self._on_started(session),
                )
        finally:
            self._vacate(session)
            self._running.discard(session)
            self._dropping.discard(session)
            for host in [h for h, f in self._followers.items() if f is session]:
                del self._followers[host]  # it may get a new follower
            if follow is not None and session.state is S.QUEUED:  # dropped: never started
                if self.stopped_reason is None:
                    self._queue.put_back(session)
                    self._blocked.add(session)  # it waited, and waits on
                else:
                    session.skip(self.stopped_reason)
            self._finished(session)
            self._dispatch()

    def _on_started(self, session: Session) -> None:
        """Its job runs: its queue wait is known now, not when it ends."""
        started = session.started_at or time.time()
        ready = session.ready_at or started
        self.contention.started(ready, started, self._waited.pop(session, False))
        self.figures.started(started - ready)
        self._dispatch()

    def _exited(self, session: Session) -> None:
        """Its process exited 0 and its terminal is free: the next session may start while
        this one writes its files and settles (it stays `running` until then)."""
        self._vacate(session)
        self._dispatch()

    def _vacate(self, session: Session) -> None:
        """Its process ended (or never started): free its slot, or pass it to the follower
        its launcher started at once."""
        if session in self._holding:
            self._holding.discard(session)
            if not self._places.give_back(session):  # memory_budget is this machine's
                self._memory -= session.spec.memory or 0
        elif session in self._reserved:
            self._reserved.discard(session)
            self._memory -= session.spec.memory or 0
        follower = self._followers.pop(session, None)
        if follower is None or follower not in self._reserved:
            return
        handover = follower.handover
        if _taking_over(follower):
            self._take_slot(follower)
        elif handover is None or not handover.decided:
            follower.drop_follow()  # not sent yet, or its job left without exiting

    def _take_slot(self, follower: Session) -> None:
        """A follower started: it holds a slot (its memory is counted already). Its
        predecessor may still hold one until it settles: counted twice, never too few."""
        self._reserved.discard(follower)
        self._holding.add(follower)

    async def _prepare(self, session: Session) -> None:
        wanted = session.spec.workspace
        if not wanted.isolated or session.workspace is not None:
            return
        base = working_dir(session.spec, self.deck)
        try:
            session.workspace = await self.workspaces.prepare(session.name, base, wanted.base)
        except WorkspaceError as exc:
            session.fail_unstarted(f"no workspace: {exc}")

    def _finished(self, session: Session) -> None:
        if not session.final:
            return  # cancelled with the engine
        self._retiring.discard(session)
        self.figures.attempt_finished()
        self._waited.pop(session, None)
        started, ended = session.started_at, session.ended_at or time.time()
        if started is not None:
            self.contention.ended(ended)
            local = not session.spec.hosts  # a host's load says nothing of this machine's
            if self._auto is not None and session.state is S.COMPLETED and local:
                self._auto.run_times.completed(session.template, started, ended - started)
        retry = session.state in UNSUCCESSFUL and self._retries_left[session.name] > 0
        if self.stopped_reason is not None:
            self._settled(session)
        elif _restarts(session):
            self._restart_service(session)
        elif retry:
            self._retry(session)
        else:
            self._settled(session)

    def _restart_service(self, session: Session) -> None:
        """Its `restart` policy: again after the backoff, which grows while it keeps ending
        soon (within backoff.max of its start) and starts over once it ran longer."""
        backoff = session.spec.backoff
        started, ended = session.started_at, session.ended_at or time.time()
        ran_long = started is not None and ended - started >= backoff.max
        streak = 1 if ran_long else self._restart_streak.get(session.name, 0) + 1
        self._restart_streak[session.name] = streak
        session.restarts += 1
        self._blocked.discard(session)
        delay = backoff.delay(streak, random.uniform(-1.0, 1.0))
        why = f"restart {session.restarts} in {delay:.2f}s after {session.reason}"
        session.requeue(why)
        self._queue.put_back(session, time.monotonic() + delay)
        self._tg.start_soon(self._dispatch_after, delay)

    def _retry(self, session: Session) -> None:
        self._retries_left[session.name] -= 1
        self._blocked.discard(session)
        number = session.spec.retries - self._retries_left[session.name]
        delay = session.spec.backoff.delay(number, random.uniform(-1.0, 1.0))
        why = f"retry {number}/{session.spec.retries} in {delay:.2f}s after {session.reason}"
        session.requeue(why)
        self._queue.put_back(session, time.monotonic() + delay)
        self.figures.retried += 1
        self._tg.start_soon(self._dispatch_after, delay)

    async def _dispatch_after(self, delay: float) -> None:
        await anyio.sleep(delay)
        self._dispatch()

    def _settled(self, session: Session) -> None:
        """A session's final result (retries spent): critical abort, failure-rate halt."""
        if session.state in (S.COMPLETED, *UNSUCCESSFUL):
            self.figures.outcome(session.state in UNSUCCESSFUL)
        if self.stopped_reason is not None:
            return
        if session.spec.critical and session.state in (*UNSUCCESSFUL, S.SKIPPED):
            self._abort(f"run aborted: critical session {session.name} {session.state}", True)
            return
        rate, ceiling = self.figures.failure_rate(), self.deck.max_failure_rate
        if rate is not None and ceiling is not None and rate > ceiling:
            window = self.deck.failure_window
            why = f"{rate:.0%} of the last {window} sessions failed (max {ceiling:.0%})"
            self._abort(f"run halted: {why}", False)

    def _abort(self, reason: str, terminate_running: bool) -> None:
        self.stopped_reason = reason
        self._emit(RunAborted(reason=reason, terminated_running=terminate_running))
        for session in self._queue.drain():
            session.skip(reason)
        for follower in list(self._reserved):  # queued too: skipped once back, or stopped
            self._dropping.add(follower)  # if it started as the abort came
            follower.drop_follow(reason if terminate_running else None)
        if terminate_running:
            for session in list(self._running - self._reserved):
                self._tg.start_soon(self._stop, session, reason)

    async def _stop(self, session: Session, reason: str) -> None:
        with contextlib.suppress(SessionError):  # it may have ended on its own meanwhile
            await session.terminate(reason)

    # -- operator commands ----------------------------------------------------------------
    async def pause(self, session: Session) -> None:
        """Pause a running session; its follower goes back to wait for a free slot."""
        await session.pause()
        follower = self._followers.get(session)
        if follower is not None:
            self._drop_one(follower)

    def _drop_one(self, follower: Session) -> None:
        if follower not in self._dropping:
            self._dropping.add(follower)
            follower.drop_follow()

    async def terminate(self, session: Session, reason: str = "stopped by operator") -> None:
        """A queued session never starts; an admitted one gets its stop signal."""
        if session in self._queue:
            self._queue.remove(session)
            session.cancel(f"{reason} before it started")
            self._dispatch()
            return
        await session.terminate(reason)

    async def terminate_all(self, reason: str = "stopped by operator") -> None:
        for session in self._queue.take_held():  # never wanted unless started: not a stop
            session.skip(NEVER_STARTED)
        while self._classify():  # sessions waiting on those are skipped as usual
            pass
        if self._queue or self._running:
            self.operator_stopped = reason
        for session in self._queue.drain():
            session.cancel(f"{reason} before it started")
        async with anyio.create_task_group() as tg:
            for session in list(self._running):
                tg.start_soon(self._stop, session, reason)
        self._dispatch()

    def restart(self, session: Session) -> None:
        """Queue a final session again with fresh retries; also lifts an abort or halt."""
        if not session.final:
            raise SessionError(
                f"session {session.name!r} is {session.state}; restart needs it final"
            )
        self.stopped_reason = self.operator_stopped = None
        self._blocked.discard(session)
        self._retries_left[session.name] = session.spec.retries
        self._restart_streak.pop(session.name, None)
        session.requeue("restarted by operator")
        self._queue.put_back(session)
        self._dispatch()

    # -- figures --------------------------------------------------------------------------
    def contention_statistics(self, at: float | None = None) -> ContentionStatistics:
        """The contention model now (engine/scheduling/contention.py)."""
        waiting = [*self._local_ready(), *self._reserved]
        since = [s.ready_at or time.time() for s in waiting]
        target = self._auto.target if self._auto is not None else self.limit
        return self.contention.statistics(
            self._local_holding(), since, self.limit, target, self.limit_reason, at
        )

    def _local_ready(self) -> list[Session]:
        """Ready sessions for this machine's slots (the window `max_parallel` bounds)."""
        return [s for s in self._queue.ready if not s.spec.hosts]

    def statistics(self) -> SchedulerStatistics:
        states = [s.state for s in self.sessions.values()]
        live = self.contention_statistics()
        return SchedulerStatistics(
            max_parallel=self.limit,
            queued=len(self._queue) + len(self._reserved),
            ready=len(self._queue.ready) + len(self._reserved),
            waiting_on_dependency=self._queue.waiting,
            backing_off=self._queue.backing_off,
            running=len(self._running - self._reserved),
            completed=states.count(S.COMPLETED),
            failed=states.count(S.FAILED) + states.count(S.LOST),  # lost: see UNSUCCESSFUL
            terminated=states.count(S.TERMINATED),
            skipped=states.count(S.SKIPPED),
            retried=self.figures.retried,
            throughput=self.figures.throughput(),
            queue_wait_mean=self.figures.wait_mean(),
            queue_wait_p95=live.wait_p95,
            memory_in_use=self._memory,
            memory_budget=self.deck.memory_budget,
            lost=states.count(S.LOST),
        )

    def _own_figures(self) -> tuple[int, int]:
        """What `max_parallel = "auto"` samples: ready, running (holding a local slot);
        sessions for hosts are bounded by their hosts, so they never raise the limit."""
        return len(self._local_ready()) + len(self._reserved), self._local_holding()

    def _adjust(self, change: Adjustment) -> None:
        if change.new < self.limit:
            self._drop_followers(len(self._reserved))  # each would keep its host's slot
        self.limit = change.new
        self.limit_reason = change.reason
        self._emit(ParallelismAdjusted(old=change.old, new=change.new, reason=change.reason))
        self._dispatch()


def _restarts(session: Session) -> bool:
    """Its attempt ended in a way its `restart` policy restarts (an operator's stop never)."""
    policy, state = session.spec.restart, session.state
    return (policy == "always" and state in (S.COMPLETED, *UNSUCCESSFUL)) or (
        policy == "on-failure" and state in UNSUCCESSFUL
    )


def _taking_over(follower: Session) -> bool:
    """Its predecessor's exit started it: it needs a slot of its own from now on. Its
    "started" may have been read already (in the same batch as the exit, on a loaded
    machine): still taking over, else it ran on a reserved slot while the next session
    took the freed one and waited for the pool behind it (test_followers, every slot)."""
    handover = follower.handover
    return handover is not None and handover.phase in (
        HandoverPhase.TAKING_OVER,
        HandoverPhase.STARTED,
    )
