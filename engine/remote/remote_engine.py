"""RemoteEngine: the Engine's public surface over the control socket.

Queries answer synchronously from a Mirror kept current by the server's pushes; async
commands wait for the server's reply (queued after the events they caused, so the mirror
already shows their effect); synchronous commands (resize, restart, fork, save_screen,
start_all) are checked against the mirror, sent in order and not waited for: their effect
shows when the server's pushes arrive, and a refusal arrives as a CommandRefused event.
Engine errors come back as the same classes (UnknownSessionError, SessionError, ...).

Size: every EngineAPI query from the mirror, and the command path; each a few lines.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio

from engine.commands import CommandCalls, parse_result
from engine.errors import InvalidCommandError, SwarmdeckError, UnknownSessionError
from engine.hub import EventHub
from engine.loop_noise import quiet_cancelled_wakeups
from engine.remote.history_copy import HistoryCopy
from engine.remote.mirror import Mirror
from engine.remote.protocol import (
    HELLO_TIMEOUT,
    MAX_SERVER_FRAME,
    VERSION,
    LineSocket,
    decode,
    encode,
    error_from_wire,
)
from engine.remote.remote_errors import ConnectionLostError

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Callable
    from pathlib import Path

    from anyio.streams.memory import MemoryObjectReceiveStream

    from engine.bus.stats import BusStatistics
    from engine.commands import Command, CommandResult
    from engine.deck.spec import DeckSpec
    from engine.events import AlertCleared, AlertRaised, BusEvent, ContentionSampled, Event
    from engine.screen import ScreenDelta, ScreenSnapshot, StyledLine
    from engine.sessions.session import SessionInfo
    from engine.statistics import (
        ContentionStatistics,
        HostStatistics,
        PoolStatistics,
        SchedulerStatistics,
    )

log = logging.getLogger(__name__)
HISTORY_EVERY = 1.0
"""Seconds between history prefetches: each asks only for the lines the copy lacks
(`history_since`), so a flooding watched session costs at most what the history cap keeps
per round, a quiet one its tail (~150 lines). Only the watched session (the room's selected
one) is prefetched: eight flooding sessions' 5,000-line copies every second took the
serving engine from 39 % to 70 % of a core and the room's key p95 from 55 to 200 ms
(bench/ui.py)."""
HISTORY_PAGE = 10_000  # stored lines asked for per reply (the server's most)
HISTORY_PAGES = 4  # replies one fetch takes at most: a flood need not be chased for ever
FULL_HISTORY = os.environ.get("SWARMDECK_HISTORY_PREFETCH") == "full"
"""Fetch the whole history each time, as protocol 6 did (`history`): for bench/keys.py's
before/after comparison only."""


class _Call:
    def __init__(self, op: str, on_result: Callable[[Any], object] | None = None) -> None:
        self.op, self.on_result = op, on_result
        self.done = anyio.Event()
        self.result: Any = None
        self.error: Exception | None = None


class RemoteEngine(CommandCalls):
    def __init__(self, stream: LineSocket, mirror: Mirror, frames: AsyncGenerator[bytes, None]):
        self._stream, self._mirror, self._frames = stream, mirror, frames
        self._hub = EventHub()
        self._out, self._outgoing = anyio.create_memory_object_stream[bytes](math.inf)
        self._pending: dict[int, _Call] = {}
        self._ids = itertools.count(1)
        self._stale: set[str] = set(mirror.infos)  # sessions whose history may have grown
        self._watched: str | None = None
        self._history_wanted = anyio.Event()
        self.lost: str | None = None
        """Why the connection ended (None while connected)."""

    # -- the Engine's attributes ----------------------------------------------------------
    @property
    def deck(self) -> DeckSpec:
        return self._mirror.deck

    @property
    def run_dir(self) -> Path:
        return self._mirror.run_dir

    @property
    def role(self) -> str:
        return self._mirror.role

    @property
    def server_pid(self) -> int:
        """The serving process, as it said in its hello reply."""
        return self._mirror.server_pid

    # -- queries, from the mirror ---------------------------------------------------------
    def _info(self, name: str) -> SessionInfo:
        try:
            return self._mirror.infos[name]
        except KeyError:
            known = ", ".join(self._mirror.infos) or "none"
            raise UnknownSessionError(f"no session named {name!r} (known: {known})") from None

    def session_info(self, name: str) -> SessionInfo:
        return self._info(name)

    def list_sessions(self) -> list[SessionInfo]:
        return list(self._mirror.infos.values())

    def screen_snapshot(self, name: str) -> ScreenSnapshot:
        self._info(name)
        return self._mirror.screens[name].snapshot()

    def screen_delta(self, name: str, since: int) -> ScreenDelta:
        self._info(name)
        return self._mirror.screens[name].delta(since)

    def scrollback(self, name: str, start: int = 0, count: int | None = None) -> list[StyledLine]:
        """History as of the last prefetch (`run_history` fetches what is new after each
        screen push, at most every HISTORY_EVERY seconds); each call also fetches anew in
        the background, and `fetch_scrollback` waits for a fresh copy."""
        self._info(name)
        self._fetch_soon(name)
        history = self._copy(name).scrollback()
        return history[start:] if count is None else history[start : start + count]

    def history(self, name: str) -> list[StyledLine]:
        """The last prefetched history with the screen it was taken with (never the
        mirror's newer screen: the lines between them are not here); the screen alone
        before the first prefetch."""
        self._info(name)
        self._fetch_soon(name)
        copy = self._copy(name)
        if not copy.ready:
            return list(self._mirror.screens[name].snapshot().lines)
        return copy.history()

    def watch_history(self, name: str | None) -> None:
        """Keep `name`'s history prefetched (None: none), so scrolling back shows it at once."""
        if name != self._watched:
            self._watched = name
            self._history_wanted.set()

    async def fetch_scrollback(self, name: str) -> list[StyledLine]:
        """Bring the copy up to date now (the lines it lacks, a page at a time)."""
        copy = self._copy(name)
        if FULL_HISTORY:
            copy.take_whole(await self._call("history", session=name))
            return copy.scrollback()
        for _ in range(HISTORY_PAGES):
            try:
                reply = await self._call(
                    "history_since", session=name, start=copy.end, count=HISTORY_PAGE
                )
            except InvalidCommandError:  # a copy of an older screen under this name
                copy = self._mirror.history[name] = HistoryCopy()
                continue
            if copy.apply(reply):
                break
        return copy.scrollback()

    def _copy(self, name: str) -> HistoryCopy:
        copy = self._mirror.history.get(name)
        if copy is None:
            copy = self._mirror.history[name] = HistoryCopy()
        return copy

    def _fetch_soon(self, name: str) -> None:
        copy = self._copy(name)
        if FULL_HISTORY:
            self._send("history", copy.take_whole, session=name)
        else:
            fields = {"session": name, "start": copy.end, "count": HISTORY_PAGE}
            self._send("history_since", copy.apply, **fields)

    def pool_statistics(self) -> PoolStatistics:
        return self._mirror.pool

    def scheduler_statistics(self) -> SchedulerStatistics:
        return self._mirror.scheduler

    def bus_statistics(self) -> BusStatistics:
        return self._mirror.bus

    def contention_statistics(self) -> ContentionStatistics:
        return self._mirror.contention

    def host_statistics(self) -> list[HostStatistics]:
        return list(self._mirror.hosts)

    def contention_history(self) -> list[ContentionSampled]:
        return list(self._mirror.contention_history)

    def alert_history(self) -> list[AlertRaised | AlertCleared]:
        return list(self._mirror.alert_history)

    def bus_history(self) -> list[BusEvent]:
        return self._mirror.bus_log.events()

    def subscribe(self) -> MemoryObjectReceiveStream[Event]:
        return self._hub.subscribe()

    # -- async commands: the reply comes after the events they caused ----------------------
    async def run(self, command: Command) -> CommandResult:
        """Decided and carried out by the server, the one authority (a viewer's attempt is
        refused there and recorded as CommandRefused); its refusal raises here."""
        fields = command.model_dump(mode="json")
        return parse_result(await self._call(fields.pop("op"), **fields))

    async def shutdown(self) -> None:
        """Stop the served engine (every session is terminated); operators only."""
        await self._call("shutdown")

    # -- plumbing -------------------------------------------------------------------------
    def _send(self, op: str, on_result: Callable[[Any], object] | None, **fields: Any) -> _Call:
        if self.lost is not None:
            raise ConnectionLostError(f"control connection lost: {self.lost}")
        req = next(self._ids)
        call = self._pending[req] = _Call(op, on_result)
        self._out.send_nowait(encode({"op": op, "req": req, **fields}))
        return call

    async def _call(self, op: str, **fields: Any) -> Any:
        call = self._send(op, None, **fields)
        await call.done.wait()
        if call.error is not None:
            raise call.error
        return call.result

    def _settle(self, frame: dict[str, Any]) -> None:
        call = self._pending.pop(frame["re"], None) if isinstance(frame["re"], int) else None
        if call is None:
            log.warning("control server: %s", frame.get("error"))
            return
        if frame.get("ok"):
            call.result = frame.get("result")
            if call.on_result is not None:
                call.on_result(call.result)
        else:
            call.error = error_from_wire(frame.get("error") or {})
        call.done.set()

    async def run_reader(self) -> None:
        reason = "the engine closed the connection"
        try:
            async with contextlib.aclosing(self._frames):
                async for line in self._frames:
                    frame = decode(line)
                    if "re" in frame:
                        self._settle(frame)
                        continue
                    for event in self._mirror.apply(frame):
                        self._hub.emit(event)
                    if frame.get("push") == "screen":
                        self._stale.add(frame["session"])
                        if frame["session"] == self._watched:
                            self._history_wanted.set()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            reason = f"connection error: {exc!r}"
        finally:
            self.close(reason)

    async def run_history(self) -> None:
        """Keep the watched session's history current, so `scrollback` answers without
        waiting: one fetch at a time, after screen pushes that may have scrolled lines off."""
        while self.lost is None:
            name = self._watched
            if name is None or name not in self._stale:
                self._history_wanted = anyio.Event()
                await self._history_wanted.wait()
                continue
            self._stale.discard(name)
            screen = self._mirror.screens.get(name)
            # On the alternate screen the history is the screen: v6 skipped it (a whole copy
            # for nothing); an incremental fetch costs the screen's rows and stays exact.
            if screen is not None and not (FULL_HISTORY and screen.alternate):
                with contextlib.suppress(SwarmdeckError):
                    await self.fetch_scrollback(name)
            await anyio.sleep(HISTORY_EVERY)

    async def run_writer(self) -> None:
        try:
            async with self._outgoing:
                async for data in self._outgoing:
                    await self._stream.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            self.close(f"connection error: {exc!r}")

    def close(self, reason: str) -> None:
        """Fail every waiting call, end every subscription; idempotent."""
        if self.lost is not None:
            return
        self.lost = reason
        for call in self._pending.values():
            call.error = ConnectionLostError(f"control connection lost: {reason}")
            call.done.set()
        self._pending.clear()
        self._out.close()
        self._hub.close()
        self._history_wanted.set()


@asynccontextmanager
async def open_remote_engine(
    socket_path: Path, role: str = "operator", *, client: str = "", protocol: int = VERSION
) -> AsyncIterator[RemoteEngine]:
    """Attach to a served engine as `role` (operator | viewer): returns once the full
    snapshot (sessions, screens, statistics) is mirrored. Leaving detaches; the engine
    and its sessions keep running."""
    quiet_cancelled_wakeups()  # stderr is the room's screen here (engine/loop_noise.py)
    async with await anyio.connect_unix(socket_path) as unix_stream:
        stream = LineSocket(unix_stream)
        hello = {"op": "hello", "req": 0, "protocol": protocol, "role": role}
        await stream.send(encode({**hello, "client": client or f"pid {os.getpid()}"}))
        frames = stream.lines(MAX_SERVER_FRAME)
        with anyio.fail_after(HELLO_TIMEOUT):
            line = await anext(frames, None)
        if line is None:
            raise ConnectionLostError("the engine closed the connection during hello")
        reply = decode(line)
        if not reply.get("ok"):
            raise error_from_wire(reply.get("error") or {})
        engine = RemoteEngine(stream, Mirror(reply["result"]), frames)
        failure: BaseException | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(engine.run_reader)
            tg.start_soon(engine.run_writer)
            tg.start_soon(engine.run_history)
            try:
                yield engine
            except BaseException as exc:  # re-raised below, not wrapped in an ExceptionGroup
                failure = exc
            finally:
                engine.close("closed by client")
                tg.cancel_scope.cancel()
        if failure is not None:
            raise failure
