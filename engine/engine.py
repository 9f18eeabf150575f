"""The engine's public async API: commands in, typed events out.

Everything a viewer may do goes through `Engine`; everything it may learn arrives as an
`Event` or a plain-data answer (SessionInfo, ScreenSnapshot, PoolStatistics,
SchedulerStatistics), so the same surface can later be served over a socket. When and in
which order sessions run is the scheduler's business (engine/scheduling/scheduler.py).

Size: the Engine is the public API; each query and command is a few lines handing over to
the part that owns it.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import secrets
import time
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from engine.alerts import TOPIC, Alerts
from engine.attention_watch import watch_idle, watch_requests
from engine.bus.bus_errors import JournalError
from engine.bus.bus_server import open_bus
from engine.bus.message import OPERATOR, parse_priority
from engine.bus_log import BusLog
from engine.commands import (
    Added,
    AddSession,
    Command,
    CommandCalls,
    CommandResult,
    Done,
    FocusSession,
    Forked,
    ForkSession,
    Named,
    PauseAll,
    PauseSession,
    ResizeSession,
    RestartSession,
    ResumeAll,
    ResumeSession,
    SaveScreen,
    ScreenSaved,
    SendInput,
    SetParallel,
    StartAll,
    StartSession,
    TerminateAll,
    TerminateSession,
)
from engine.deck.fork import added_spec, fork_spec
from engine.errors import UnknownSessionError
from engine.events import (
    ContentionSampled,
    RunFinished,
    ScreenChanged,
    SessionStateChanged,
    TerminalRecycled,
)
from engine.hub import EventHub
from engine.rundir import claim_run_dir
from engine.sampler import Sampler
from engine.scheduling.scheduler import Scheduler
from engine.scheduling.summary import build_summary, verdict
from engine.sessions.ownership import owners
from engine.sessions.recording import FLUSH_INTERVAL, save_screen, screen_texts
from engine.sessions.session import Session, SessionInfo
from engine.sessions.workspace import Workspaces
from engine.states import FINAL_STATES, LIVE_STATES, SessionState
from engine.terminals.pool import open_pool

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

    from anyio.abc import TaskGroup
    from anyio.streams.memory import MemoryObjectReceiveStream

    from engine.bus.broker import MessageBus, Receipt
    from engine.bus.consumers import LocalSubscription
    from engine.bus.delivery import DeadLetter
    from engine.bus.message import Message
    from engine.bus.stats import BusStatistics
    from engine.deck.spec import DeckSpec, SessionSpec
    from engine.events import AlertCleared, AlertRaised, BusEvent, Event
    from engine.scheduling.summary import Verdict
    from engine.screen import HistoryRead, ScreenDelta, ScreenSnapshot, StyledLine
    from engine.sessions.session import Replica
    from engine.statistics import (
        ContentionStatistics,
        HostStatistics,
        PoolStatistics,
        SchedulerStatistics,
    )
    from engine.terminals.pool import TerminalPool

FRAME = 1 / 30
INTERACTIVE_FRAME = 1 / 120  # an interactive session's leading edge: every key's echo at once
FLOOD_FRAME = 1 / 10
"""A flooding session (its screen changed on FLOOD_STREAK frames in a row) is announced at
most this often: rooms repaint flooding panes at ~10 Hz anyway (tui/widgets/pane_grid.py),
so the other two of three frames' deltas were encoded, sent and decoded for nothing."""
FLOOD_STREAK = 6
FLUSH_EVERY_FRAMES = round(FLUSH_INTERVAL / FRAME)  # the frame ticker flushes recordings
COMPACT_BUDGET = 0.002  # seconds a frame may spend moving evicted history into the stores
COMPACT_STEP = 16  # rows converted between two looks at the clock


def default_run_dir(deck: DeckSpec, base: Path | None = None, *, root: Path | None = None) -> Path:
    """`<root>/<deck>-<UTC time>-<random>`, root being `.swarmdeck/runs` under the current
    directory unless given (the person's config.toml `runs`)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    root = root or (base or Path.cwd()) / ".swarmdeck" / "runs"
    return root / f"{deck.name}-{stamp}-{secrets.token_hex(2)}"


class Engine(CommandCalls):
    def __init__(
        self,
        deck: DeckSpec,
        run_dir: Path,
        pool: TerminalPool,
        bus: MessageBus,
        hub: EventHub,
        tg: TaskGroup,
    ) -> None:
        self.deck = deck
        self.run_dir = run_dir
        self.pool = pool
        self.bus = bus
        self.hub = hub
        hub.interactive = self.interactive
        self._tg = tg
        self._dirty: set[str] = set()
        self._announced: dict[str, float] = {}
        self._streak: dict[str, int] = {}  # frames in a row a session's screen changed
        self._trailing: dict[str, float] = {}  # interactive, touched too soon: when to announce
        self._trail_wake = anyio.Event()
        self.scheduler = Scheduler(
            deck, pool, tg, self.hub.emit, self._new_session, Workspaces(run_dir)
        )
        self.sessions: dict[str, Session] = self.scheduler.sessions
        bus.tokens.identify = lambda pid: owners(self.sessions, pid)
        self._shard_queues()
        hub.listen(self._watch_ends)
        self.alerts = Alerts(deck.alerts, run_dir, self.hub.emit, self._publish_alert)
        self.bus_log = BusLog()
        self.hub.listen(self.bus_log.record)
        self.sampler = Sampler(self.scheduler, pool, bus, self.alerts, self.hub.emit)

    def _new_session(self, spec: SessionSpec, template: str, replica: Replica | None) -> Session:
        return Session(
            spec,
            self.deck,
            self.run_dir,
            self.hub.emit,
            self._screen_touched,
            self.session_env,
            template=template,
            replica=replica,
        )

    def _shard_queues(self) -> None:
        """Each `queue = {...}` of the deck: one shard per replica (engine/bus/stealing.py)."""
        for spec in self.deck.sessions:
            if spec.queue is not None:
                names = [spec.name] if spec.replicas == 1 else [
                    f"{spec.name}#{i}" for i in range(1, spec.replicas + 1)
                ]  # fmt: skip
                self.bus.shard(spec.queue.name, names, spec.queue.steal)

    def _watch_ends(self, event: Event) -> None:
        """A session's process ended (final, or queued for a retry): what it took from the
        bus and never acked is owed again now. Run as a task: not inside this emit."""
        if not isinstance(event, SessionStateChanged) or event.old not in LIVE_STATES:
            return
        if event.new in FINAL_STATES or event.new is SessionState.QUEUED:
            with contextlib.suppress(RuntimeError):  # the engine is closing: nothing is owed
                self._tg.start_soon(self._abandon, event.session)

    async def _abandon(self, session: str) -> None:
        if self.bus.abandon(session):
            with contextlib.suppress(JournalError):  # reported; the sweeper commits later
                self.bus.commit()

    def session_env(self, name: str) -> dict[str, str]:
        """Variables every job of session `name` gets on top of its deck env (bus access)."""
        return {
            "SWARMDECK_BUS": str(self.bus.socket_path),
            "SWARMDECK_BUS_TOKEN": self.bus.token_for(name),
        }

    # -- bus (the operator's side; sessions use the socket) -------------------------------
    def bus_publish(
        self, topic: str, payload: object, *, reliable: bool = False, priority: str = "normal"
    ) -> Receipt:
        """Publish as the operator; a reliable message is journalled before this returns."""
        receipt = self.bus.send(
            "topic", topic, OPERATOR, payload, reliable=reliable, priority=parse_priority(priority)
        )
        self.bus.commit()
        return receipt

    def bus_send(self, session: str, payload: object, *, reliable: bool = False) -> Receipt:
        receipt = self.bus.send("direct", session, OPERATOR, payload, reliable=reliable)
        self.bus.commit()
        return receipt

    def bus_broadcast(self, payload: object, *, reliable: bool = False) -> Receipt:
        receipt = self.bus.send("broadcast", "*", OPERATOR, payload, reliable=reliable)
        self.bus.commit()
        return receipt

    def bus_push(
        self, queue: str, payload: object, *, reliable: bool = False, delay: float = 0.0
    ) -> Receipt:
        receipt = self.bus.send("queue", queue, OPERATOR, payload, reliable=reliable, delay=delay)
        self.bus.commit()
        return receipt

    async def bus_request(self, topic: str, payload: object, timeout: float = 10.0) -> Message:
        return await self.bus.request(OPERATOR, topic, payload, timeout)

    def bus_subscribe(self, pattern: str) -> LocalSubscription:
        """Messages on topics matching `pattern`, as the operator; close it when done."""
        return self.bus.subscribe(OPERATOR, pattern)

    def bus_declare(self, kind: str, name: str, **config: object) -> None:
        """Order, limits and ACL of a queue, or the ACL of a group (`kind`: queue/group)."""
        self.bus.declare(OPERATOR, kind, name, **config)
        self.bus.commit()

    def bus_dead_letters(self) -> list[DeadLetter]:
        return self.bus.dead_letters()

    def bus_replay(self, ids: list[str] | None = None) -> int:
        count = self.bus.replay(ids)
        self.bus.commit()
        return count

    def bus_statistics(self) -> BusStatistics:
        return self.bus.statistics()

    # -- running --------------------------------------------------------------------------
    async def wait_finished(self) -> bool:
        """Wait until every session is final (nothing queued or running); the verdict's ok."""
        await self.scheduler.wait_idle()
        return self.ok

    @property
    def ok(self) -> bool:
        return self.verdict().ok

    @property
    def run_over(self) -> bool:
        """Started, and every session final (a restart or a fork starts it moving again)."""
        return self.scheduler.started and self.scheduler.idle

    async def _watch_run(self) -> None:
        """Each time the run comes to rest: summary.json, then RunFinished with the verdict
        (not only when the engine stops, which a served run may never do)."""
        while True:
            await self.scheduler.wait_idle()
            if self.scheduler.started:
                self.report_run()
            await self.scheduler.wait_busy()

    def report_run(self) -> None:
        path, result = self.write_summary(), self.verdict()
        self.hub.emit(
            RunFinished(
                ok=result.ok, summary_path=os.fspath(path), outcome=result.outcome,
                reason=result.reason, succeeded=result.succeeded, total=result.total,
            )
        )  # fmt: skip

    def verdict(self) -> Verdict:
        """Succeeded, partial (min_success), failed, aborted or stopped, and why."""
        scheduler = self.scheduler
        infos = self.list_sessions()
        return verdict(self.deck, infos, scheduler.stopped_reason, scheduler.operator_stopped)

    # -- commands -------------------------------------------------------------------------
    def _get(self, name: str) -> Session:
        try:
            return self.sessions[name]
        except KeyError:
            known = ", ".join(self.sessions) or "none"
            raise UnknownSessionError(f"no session named {name!r} (known: {known})") from None

    async def run(self, command: Command) -> CommandResult:
        """Carry out one operator command (engine/commands.py); refusals raise."""
        match command:
            case StartAll():
                self.scheduler.start()  # best ready first, max_parallel at once
            case PauseSession(session=name):
                await self.scheduler.pause(self._get(name))
            case ResumeSession(session=name):
                await self._get(name).resume()
            case TerminateSession(session=name):  # queued: never starts; live: signal, SIGKILL
                await self.scheduler.terminate(self._get(name))
            case TerminateAll():
                await self.scheduler.terminate_all()
            case RestartSession(session=name):  # new attempt, fresh retries; lifts an abort
                self.scheduler.restart(self._get(name))
            case StartSession(session=name):  # autostart = false: the operator's go
                self.scheduler.start_held(self._get(name))
            case ForkSession(session=name, overrides=overrides):
                return Forked(name=self._fork(name, overrides))
            case AddSession(table=table):
                return Added(name=self._add(table))
            case SendInput(session=name, data=data):
                await self._get(name).send_input(data)
            case ResizeSession(session=name, cols=cols, rows=rows, deliberate=deliberate):
                self._get(name).resize_for_pane(cols, rows, deliberate)
            case FocusSession(session=name):
                self._focus(name)
            case SaveScreen(session=name):
                screen = self._get(name).screen
                text, ansi = save_screen(self.run_dir / "sessions", name, *screen_texts(screen))
                return ScreenSaved(text=text, ansi=ansi)
            case PauseAll(pattern=pattern):
                return Named(names=await self._pause_all(pattern))
            case ResumeAll(pattern=pattern):
                return Named(names=await self._resume_all(pattern))
            case SetParallel(value=value):
                self.scheduler.set_parallel(value)
        return Done()

    def _matching(self, pattern: str, state: SessionState) -> list[str]:
        """Sessions in `state` whose name (or template) matches the glob `pattern`."""
        return [
            n
            for n, s in self.sessions.items()
            if s.state is state
            and (fnmatch.fnmatchcase(n, pattern) or fnmatch.fnmatchcase(s.template, pattern))
        ]

    async def _pause_all(self, pattern: str) -> list[str]:
        names = self._matching(pattern, SessionState.ACTIVE)
        async with anyio.create_task_group() as tg:
            for name in names:
                tg.start_soon(self.scheduler.pause, self.sessions[name])
        return names

    async def _resume_all(self, pattern: str) -> list[str]:
        names = self._matching(pattern, SessionState.PAUSED)
        async with anyio.create_task_group() as tg:
            for name in names:
                tg.start_soon(self.sessions[name].resume)
        return names

    def _focus(self, name: str | None) -> None:
        """Last operator wins (like resize); other rooms' typing still counts for a
        second after each key (engine/terminals/terminal.py)."""
        focused = self._get(name) if name is not None else None
        for session in self.sessions.values():
            session.focus(session is focused)

    def interactive(self, name: str) -> bool:
        """Focused in a room or typed into in the last second: it goes first at every
        stage (docs/performance.md, fairness); unknown names are not."""
        session = self.sessions.get(name)
        return session is not None and session.interactive()

    def _fork(self, name: str, overrides: Mapping[str, object]) -> str:
        """A new session from `name`'s spec with `overrides` (any session field; env is
        merged), named by engine/deck/fork.py's rule."""
        source = self._get(name)
        taken = {*self.sessions, *(s.template for s in self.sessions.values())}
        spec = fork_spec(source.spec, source.template, overrides, self.deck, taken)
        session = self._new_session(spec, spec.name, None)
        self.scheduler.add(session, announce=f"forked from {name}")
        return session.name

    def _add(self, table: Mapping[str, object]) -> str:
        """A new session from a session table, validated like the deck's own."""
        taken = {*self.sessions, *(s.template for s in self.sessions.values())}
        spec = added_spec(table, self.deck, taken)
        session = self._new_session(spec, spec.name, None)
        session.announce("added at run time")
        self.scheduler.add(session)
        return session.name

    # -- queries --------------------------------------------------------------------------
    def session_info(self, name: str) -> SessionInfo:
        return self._get(name).info()

    def list_sessions(self) -> list[SessionInfo]:
        return [s.info() for s in self.sessions.values()]

    def screen_snapshot(self, name: str) -> ScreenSnapshot:
        return self._get(name).screen.snapshot()

    def screen_delta(self, name: str, since: int) -> ScreenDelta:
        return self._get(name).screen.delta(since)

    def watch_history(self, name: str | None) -> None:
        """History is local here: nothing to prefetch."""

    def scrollback(self, name: str, start: int = 0, count: int | None = None) -> list[StyledLine]:
        """History rows above the screen, oldest first. A copy of the whole history costs
        ~26 ms at 5000x200, so viewers fetch it when the operator scrolls, not per frame."""
        screen = self._get(name).screen
        return screen.scrollback_lines(start, screen.scrollback_size() if count is None else count)

    def history(self, name: str) -> list[StyledLine]:
        """Scrollback then screen at one instant: the session's output, line for line."""
        return self._get(name).screen.output()

    def history_read(self, name: str, start: int, count: int) -> HistoryRead:
        """Stored history from absolute index `start` (at most `count` lines) with the
        tail and screen, fixed at one instant and decoded piece by piece: what an attached
        room appends to its copy (`history_since`, engine/remote/handlers.py)."""
        return self._get(name).screen.history_read(start, count)

    def pool_statistics(self) -> PoolStatistics:
        return self.pool.statistics()

    def scheduler_statistics(self) -> SchedulerStatistics:
        return self.scheduler.statistics()

    def contention_statistics(self) -> ContentionStatistics:
        """The contention model now (docs/contention.md)."""
        return self.scheduler.contention_statistics()

    def contention_history(self) -> list[ContentionSampled]:
        """The last minutes of contention samples, oldest first (for sparklines)."""
        return list(self.sampler.history)

    def subscribe(self) -> MemoryObjectReceiveStream[Event]:
        return self.hub.subscribe()

    # -- background -----------------------------------------------------------------------
    def _screen_touched(self, name: str) -> None:
        """Leading edge now, then at most one ScreenChanged per frame per session.

        A keystroke's echo is announced at once (no frame of added latency), or, if the last
        announcement is under INTERACTIVE_FRAME old, when that frame ends (a trailing edge of
        its own: on the frame ticker, a typist who never pauses for a whole frame kept the
        session dirty on every frame and looked like a flood, announced at 10 Hz: 100 ms a
        key in bench/keys.py's idle phase). A session that keeps changing is coalesced onto
        the frame ticker.
        """
        now = time.monotonic()
        self.sampler.output_seen(name, now)
        last = self._announced.get(name, 0.0)
        if self.sessions[name].interactive():
            self._dirty.discard(name)
            due = last + INTERACTIVE_FRAME
            if now >= due:
                self._trailing.pop(name, None)
                self._announce(name, now)
            elif name not in self._trailing:
                self._trailing[name] = due
                self._trail_wake.set()
        elif name not in self._dirty and now - last >= FRAME:
            self._announce(name, now)
        else:
            self._dirty.add(name)

    def _announce(self, name: str, now: float) -> None:
        self._announced[name] = now
        self.hub.emit(ScreenChanged(session=name, revision=self.sessions[name].screen.revision))

    async def _trail_screens(self) -> None:
        """Announce each interactive session whose trailing edge is due (_screen_touched)."""
        while True:
            await self._trail_wake.wait()
            self._trail_wake = anyio.Event()
            while self._trailing:
                await anyio.sleep(max(0.0, min(self._trailing.values()) - time.monotonic()))
                now = time.monotonic()
                for name, due in list(self._trailing.items()):
                    if due <= now:
                        del self._trailing[name]
                        self._announce(name, now)

    async def _tick_screens(self) -> None:
        frames = 0
        while True:
            await anyio.sleep(FRAME)
            frames += 1
            if frames % FLUSH_EVERY_FRAMES == 0:
                for session in self.sessions.values():
                    session.flush_recording()
            self._compact_screens(frames, time.perf_counter() + COMPACT_BUDGET)
            if self._dirty or self._streak:
                self._announce_dirty(time.monotonic())

    def _announce_dirty(self, now: float) -> None:
        """One frame: announce what changed, a flooding session only every FLOOD_FRAME."""
        self._streak = {name: self._streak.get(name, 0) + 1 for name in self._dirty}
        for name in list(self._dirty):
            flooding = self._streak[name] >= FLOOD_STREAK
            if flooding and now - self._announced.get(name, 0.0) < FLOOD_FRAME:
                continue  # stays dirty: announced on a later frame, nothing is lost
            self._dirty.discard(name)
            self._announce(name, now)

    def _compact_screens(self, frame: int, deadline: float) -> None:
        """History rows avt evicted become compact COMPACT_STEP at a time (a worst-case
        step, 16 rows of a pen per word, is ~3 ms), within the frame's budget: a flood's
        last 5,000 rows are not converted in one blocking go. Each frame starts at another
        session, so one busy session cannot keep the others raw."""
        screens = [session.screen for session in self.sessions.values()]
        first = frame % len(screens) if screens else 0
        for screen in screens[first:] + screens[:first]:
            while screen.compact(COMPACT_STEP):
                if time.perf_counter() >= deadline:
                    return

    def _publish_alert(self, line: str) -> None:
        """Alerts go on the bus as the operator's messages, so agents can subscribe."""
        self.bus.send("topic", TOPIC, OPERATOR, json.loads(line))
        self.bus.commit()

    def bus_history(self) -> list[BusEvent]:
        """The last bus events, then the traffic counted so far (engine/bus_log.py)."""
        return self.bus_log.events()

    def alert_history(self) -> list[AlertRaised | AlertCleared]:
        """Alerts raised and cleared, oldest first (the last HISTORY of them)."""
        return list(self.alerts.history)

    def host_statistics(self) -> list[HostStatistics]:
        """Each [[host]]'s connection: up, channels, RTT, connects, failures, drops."""
        return self.pool.host_statistics()

    def write_summary(self) -> Path:
        """summary.json: per-session attempts and outcome, and the run's verdict."""
        path = self.run_dir / "summary.json"
        data = build_summary(self.deck, self.list_sessions(), self.verdict())
        data["scheduler"] = asdict(self.scheduler.statistics())
        data["pool"] = asdict(self.pool.statistics())
        data["contention"] = asdict(self.contention_statistics())
        data["balance"] = [asdict(q.balance()) for q in self.bus.sharded.values()]
        if self.deck.hosts:
            data["hosts"] = [asdict(host) for host in self.host_statistics()]
        path.write_text(json.dumps(data, indent=2) + "\n")
        return path

    def live_sessions(self) -> list[str]:
        return [n for n, s in self.sessions.items() if s.state in LIVE_STATES]


@asynccontextmanager
async def open_engine(deck: DeckSpec, run_dir: Path | None = None) -> AsyncIterator[Engine]:
    """Run an engine for the block; on exit every session is stopped and every PTY closed."""
    run_dir = run_dir or default_run_dir(deck)
    with claim_run_dir(run_dir) as user_umask:  # first: refused before anything is touched
        (run_dir / "sessions").mkdir(exist_ok=True)
        async with _run_engine(deck, run_dir, user_umask) as engine:
            yield engine


@asynccontextmanager
async def _run_engine(deck: DeckSpec, run_dir: Path, user_umask: int) -> AsyncIterator[Engine]:
    hub = EventHub()  # first: the pool and the bus report into it from the start
    failure: BaseException | None = None

    def on_recycle(terminal: int, reason: str) -> None:
        hub.emit(TerminalRecycled(terminal=terminal, reason=reason))

    names = [spec.name for spec in deck.sessions]
    async with (
        open_pool(deck.pool, on_recycle, session_umask=user_umask, hosts=deck.hosts) as pool,
        open_bus(run_dir, names, hub.emit, nats=deck.bus) as bus,
        anyio.create_task_group() as tg,
    ):
        engine = Engine(deck, run_dir, pool, bus, hub, tg)
        pool.forward_bus(str(bus.socket_path))  # set up as each host connects, not on demand
        tg.start_soon(engine._tick_screens)
        tg.start_soon(engine._trail_screens)
        tg.start_soon(engine.sampler.run)
        tg.start_soon(engine._watch_run)
        tg.start_soon(watch_idle, engine.sessions)
        tg.start_soon(watch_requests, bus, engine.sessions)
        try:
            yield engine
            with anyio.CancelScope(shield=True), anyio.move_on_after(60):
                await engine.terminate_all()
        except BaseException as exc:  # re-raised below, not wrapped in an ExceptionGroup
            failure = exc
        finally:
            engine.report_run()
            engine.hub.close()
            tg.cancel_scope.cancel()
    if failure is not None:
        raise failure
