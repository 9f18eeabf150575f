"""The engine's public async API: commands in, typed events out.

Everything a viewer may do goes through `Engine`; everything it may learn arrives as an
`Event` or a plain-data answer (SessionInfo, ScreenSnapshot, PoolStatistics), so the same
surface can later be served over a socket.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from engine.errors import UnknownSessionError
from engine.events import PoolSampled, RunFinished, ScreenChanged, TerminalRecycled
from engine.hub import EventHub
from engine.pool import open_pool
from engine.recorder import save_screen
from engine.session import Session, SessionInfo
from engine.states import FINAL_STATES, LIVE_STATES, SessionState

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from anyio.abc import TaskGroup
    from anyio.streams.memory import MemoryObjectReceiveStream

    from engine.events import Event
    from engine.pool import PoolStatistics, TerminalPool
    from engine.screen import ScreenDelta, ScreenSnapshot
    from engine.spec import DeckSpec

FRAME = 1 / 30
SAMPLE_EVERY = 1.0
FLUSH_EVERY_FRAMES = 15  # recordings reach the disk within ~0.5 s


def default_run_dir(deck: DeckSpec, base: Path | None = None) -> Path:
    """`.swarmdeck/runs/<deck>-<UTC time>-<random>` under the current directory."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    root = (base or Path.cwd()) / ".swarmdeck" / "runs"
    return root / f"{deck.name}-{stamp}-{secrets.token_hex(2)}"


class Engine:
    def __init__(self, deck: DeckSpec, run_dir: Path, pool: TerminalPool, tg: TaskGroup) -> None:
        self.deck = deck
        self.run_dir = run_dir
        self.pool = pool
        self._tg = tg
        self.hub = EventHub()
        self._dirty: set[str] = set()
        self._limiter = anyio.CapacityLimiter(deck.pool.size)
        self._runners = 0
        self._idle = anyio.Event()
        self._idle.set()
        self.sessions: dict[str, Session] = {
            spec.name: Session(
                spec, deck, run_dir, self.hub.emit, self._dirty.add, self.session_env
            )
            for spec in deck.sessions
        }

    def session_env(self, name: str) -> dict[str, str]:
        """Variables every job of session `name` gets on top of its deck env (bus access)."""
        return {}

    # -- running --------------------------------------------------------------------------
    def start_all(self) -> None:
        """Queue every session in file order; the pool size bounds how many run at once."""
        for session in self.sessions.values():
            self._launch(session)

    def _launch(self, session: Session) -> None:
        self._runners += 1
        self._idle = anyio.Event() if self._idle.is_set() else self._idle
        self._tg.start_soon(self._run_one, session)

    async def _run_one(self, session: Session) -> None:
        try:
            await session.run(self.pool, self._limiter, self._tg)
        finally:
            self._runners -= 1
            if self._runners == 0:
                self._idle.set()

    async def wait_finished(self) -> bool:
        """Wait until no session is running; True when every session completed."""
        await self._idle.wait()
        return self.ok

    @property
    def ok(self) -> bool:
        return all(s.state is SessionState.COMPLETED for s in self.sessions.values())

    # -- commands -------------------------------------------------------------------------
    def _get(self, name: str) -> Session:
        try:
            return self.sessions[name]
        except KeyError:
            known = ", ".join(self.sessions) or "none"
            raise UnknownSessionError(f"no session named {name!r} (known: {known})") from None

    async def pause(self, name: str) -> None:
        await self._get(name).pause()

    async def resume(self, name: str) -> None:
        await self._get(name).resume()

    async def terminate(self, name: str) -> None:
        await self._get(name).terminate()

    async def terminate_all(self) -> None:
        """Stop every session that has not reached a final state, all at once."""
        async with anyio.create_task_group() as tg:
            for session in self.sessions.values():
                if session.state not in FINAL_STATES:
                    tg.start_soon(session.terminate)

    async def send_input(self, name: str, data: bytes) -> None:
        await self._get(name).send_input(data)

    def resize(self, name: str, cols: int, rows: int) -> None:
        self._get(name).resize(cols, rows)

    # -- queries --------------------------------------------------------------------------
    def session_info(self, name: str) -> SessionInfo:
        return self._get(name).info()

    def list_sessions(self) -> list[SessionInfo]:
        return [s.info() for s in self.sessions.values()]

    def screen_snapshot(self, name: str) -> ScreenSnapshot:
        return self._get(name).screen.snapshot()

    def screen_delta(self, name: str, since: int) -> ScreenDelta:
        return self._get(name).screen.delta(since)

    def save_screen(self, name: str) -> tuple[Path, Path]:
        """Write the session's current screen as text and ANSI into the run directory."""
        return save_screen(self.run_dir / "sessions", name, self._get(name).screen)

    def pool_statistics(self) -> PoolStatistics:
        return self.pool.statistics()

    def subscribe(self) -> MemoryObjectReceiveStream[Event]:
        return self.hub.subscribe()

    # -- background -----------------------------------------------------------------------
    async def _tick_screens(self) -> None:
        frames = 0
        while True:
            await anyio.sleep(FRAME)
            frames += 1
            if frames % FLUSH_EVERY_FRAMES == 0:
                for session in self.sessions.values():
                    session.flush_recording()
            if self._dirty:
                dirty = list(self._dirty)
                self._dirty.clear()
                for name in dirty:
                    rev = self.sessions[name].screen.revision
                    self.hub.emit(ScreenChanged(session=name, revision=rev))

    async def _sample_pool(self) -> None:
        while True:
            self.hub.emit(PoolSampled(**_sample_fields(self.pool.statistics())))
            await anyio.sleep(SAMPLE_EVERY)

    def write_summary(self) -> Path:
        """summary.json: per-session outcome and the run's verdict."""
        path = self.run_dir / "summary.json"
        data = {
            "deck": self.deck.name,
            "deck_file": str(self.deck.path),
            "ok": self.ok,
            "sessions": [s.info().model_dump(mode="json") for s in self.sessions.values()],
            "pool": asdict(self.pool.statistics()),
        }
        path.write_text(json.dumps(data, indent=2) + "\n")
        return path

    def live_sessions(self) -> list[str]:
        return [n for n, s in self.sessions.items() if s.state in LIVE_STATES]


def _sample_fields(stats: PoolStatistics) -> dict[str, float]:
    fields = asdict(stats)
    fields.pop("starting")
    return fields


@asynccontextmanager
async def open_engine(deck: DeckSpec, run_dir: Path | None = None) -> AsyncIterator[Engine]:
    """Run an engine for the block; on exit every session is stopped and every PTY closed."""
    run_dir = run_dir or default_run_dir(deck)
    (run_dir / "sessions").mkdir(parents=True, exist_ok=True)
    hub_ref: list[Engine] = []
    failure: BaseException | None = None

    def on_recycle(terminal: int, reason: str) -> None:
        if hub_ref:
            hub_ref[0].hub.emit(TerminalRecycled(terminal=terminal, reason=reason))

    async with open_pool(deck.pool, on_recycle) as pool, anyio.create_task_group() as tg:
        engine = Engine(deck, run_dir, pool, tg)
        hub_ref.append(engine)
        tg.start_soon(engine._tick_screens)
        tg.start_soon(engine._sample_pool)
        try:
            yield engine
            with anyio.CancelScope(shield=True), anyio.move_on_after(60):
                await engine.terminate_all()
        except BaseException as exc:  # re-raised below, not wrapped in an ExceptionGroup
            failure = exc
        finally:
            path = engine.write_summary()
            engine.hub.emit(RunFinished(ok=engine.ok, summary_path=os.fspath(path)))
            engine.hub.close()
            tg.cancel_scope.cancel()
    if failure is not None:
        raise failure
