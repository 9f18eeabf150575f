"""The terminal pool: warm PTYs leased FIFO, health-checked, recycled, kept warm.

Leasing never polls: a released terminal (or a freed slot) is handed straight to the
longest waiter. A slot is the right to have one live terminal; `capacity` bounds pooled
and fresh terminals together, so a fresh lease may evict an idle warm terminal.

Size: leases, warmth, health checks and recycling act on one set of terminals and waiters.
"""

from __future__ import annotations

import time
from collections import deque
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Literal

import anyio

from engine.errors import PoolClosedError, PoolTimeoutError, TerminalError
from engine.metrics import percentile
from engine.statistics import PoolStatistics
from engine.terminals.fresh import FreshTerminal
from engine.terminals.pooled import PooledTerminal
from engine.terminals.relay import run_relays
from engine.terminals.turns import ReadTurns
from engine.terminals.warden import run_wardens

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence

    from anyio.abc import TaskGroup

    from engine.deck.host_spec import HostSpec
    from engine.deck.spec import PoolSpec
    from engine.statistics import HostStatistics
    from engine.terminals.hosts.host_registry import HostRegistry
    from engine.terminals.hosts.remote_terminal import RemoteTerminal
    from engine.terminals.relay import PtyRelay
    from engine.terminals.terminal import Terminal
    from engine.terminals.warden import Warden

Kind = Literal["pooled", "fresh"]
_NEW = "new"


class _Waiter:
    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        self.event = anyio.Event()
        self.grant: PooledTerminal | str | None = None


class TerminalPool:
    def __init__(
        self,
        spec: PoolSpec,
        tg: TaskGroup,
        on_recycle: Callable[[int, str], None] | None = None,
    ) -> None:
        self.spec = spec
        self._tg = tg
        self._relay: PtyRelay | None = None  # set by run_relays through adopt_relay
        self._warden: Warden | None = None  # set by run_wardens through adopt_warden
        self.turns = ReadTurns()  # every terminal's reader takes turns here when flooding
        self._on_recycle = on_recycle
        self._idle: deque[PooledTerminal] = deque()
        self._busy: set[Terminal] = set()
        self._starting = 0
        self._warming = 0
        self._waiters: deque[_Waiter] = deque()
        self._closed = False
        self.leases = self.created = self.recycled = self.waited = 0
        self._waits: deque[float] = deque(maxlen=2048)
        self.hosts: HostRegistry | None = None  # the deck's [[host]]s (docs/hosts.md)

    @property
    def capacity(self) -> int:
        return self.spec.size

    @property
    def live(self) -> int:
        return len(self._idle) + len(self._busy) + self._starting

    # -- leasing --------------------------------------------------------------------------
    async def acquire(self, kind: Kind = "pooled") -> Terminal:
        """Lease a terminal, waiting FIFO up to acquire_timeout."""
        if self._closed:
            raise PoolClosedError("the pool is closed")
        t0 = time.monotonic()
        grant = None if self._waiters else self._reserve(kind)
        if grant is None:
            self.waited += 1
            grant = await self._wait_for_grant(kind)
        term = await self._materialise(kind, grant)
        now = time.monotonic()
        self._record_wait(now - t0)
        self.leases += 1
        return term

    async def _wait_for_grant(self, kind: Kind) -> PooledTerminal | str:
        waiter = _Waiter(kind)
        self._waiters.append(waiter)
        try:
            with anyio.fail_after(self.spec.acquire_timeout):
                await waiter.event.wait()
        except BaseException as exc:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            if waiter.grant is not None:
                self._give_back(waiter.grant)
            if isinstance(exc, TimeoutError):
                raise PoolTimeoutError(self._timeout_message()) from None
            raise
        assert waiter.grant is not None
        return waiter.grant

    def _timeout_message(self) -> str:
        return (
            f"no terminal became free within {self.spec.acquire_timeout:g}s "
            f"(pool: capacity {self.capacity}, in use {len(self._busy)}, "
            f"idle {len(self._idle)}, starting {self._starting}, "
            f"waiters {len(self._waiters)})"
        )

    def _reserve(self, kind: Kind) -> PooledTerminal | str | None:
        """Synchronously claim an idle terminal or a slot for a new one."""
        if kind == "pooled" and self._idle:
            term = self._idle.popleft()
            self._busy.add(term)
            return term
        if self.live < self.capacity:
            self._starting += 1
            return _NEW
        if kind == "fresh" and self._idle:
            self._retire(self._idle.popleft(), "evicted for a fresh terminal", count=False)
            self._starting += 1
            return _NEW
        return None

    def _give_back(self, grant: PooledTerminal | str) -> None:
        if isinstance(grant, PooledTerminal):
            self._busy.discard(grant)
            self._idle.appendleft(grant)
        else:
            self._starting -= 1
        self._wake_waiters()

    def adopt_relay(self, relay: PtyRelay | None) -> None:
        """The relay new terminals read through (None: they read their PTYs directly)."""
        self._relay = relay

    def adopt_warden(self, warden: Warden | None) -> None:
        """The warden new terminals start their processes through (engine/terminals/warden.py)."""
        self._warden = warden

    async def _materialise(self, kind: Kind, grant: PooledTerminal | str) -> Terminal:
        if isinstance(grant, PooledTerminal):
            if await grant.check_health():
                return grant
            self._busy.discard(grant)
            self._retire(grant, "unhealthy on lease")
            self._starting += 1
        try:
            term: Terminal = (
                FreshTerminal(self.spec.cols, self.spec.rows, self._relay, self._warden)
                if kind == "fresh"
                else await self._open_pooled()
            )
        except BaseException:
            self._start_failed()
            raise
        self._starting -= 1
        self._busy.add(term)
        term.turns = self.turns  # a pooled one has them already
        return term

    async def _open_pooled(self) -> PooledTerminal:
        term = PooledTerminal(self.spec.cols, self.spec.rows, self._relay, self._warden)
        term.turns = self.turns
        try:
            await term.open(self._tg, self.spec.shell, self.spec.init)
        except BaseException:  # open() closes what it made; this covers an early failure
            await term.aclose()
            raise
        self.created += 1
        return term

    def _start_failed(self) -> None:
        """A terminal could not start: its slot is free again, so a waiter may take it."""
        self._starting -= 1
        self._wake_waiters()

    async def acquire_remote(self, host: str, cols: int, rows: int) -> RemoteTerminal:
        """Lease a fresh terminal on a [[host]] (its own pool.size bounds these)."""
        if self.hosts is None:
            raise PoolClosedError(f"no host {host!r} in this pool")
        return await self.hosts.acquire(host, cols, rows)

    def host_statistics(self) -> list[HostStatistics]:
        return self.hosts.statistics() if self.hosts is not None else []

    def release(
        self, term: Terminal | RemoteTerminal, reusable: bool = True, pid: int | None = None
    ) -> None:
        """Return a lease; hand it to the longest waiter or park it idle (or replace it).
        A terminal whose job `pid` started its follower on exit stays leased: to the
        follower."""
        if term.kind == "remote":
            assert self.hosts is not None
            self.hosts.release(term)
            return
        if isinstance(term, PooledTerminal) and pid is not None and term.take_handover(pid):
            self.leases += 1
            return
        self._busy.discard(term)
        if (
            reusable
            and isinstance(term, PooledTerminal)
            and term.reusable
            and not self._closed
            and term.leases < self.spec.recycle_after
        ):
            self._idle.append(term)
        elif isinstance(term, PooledTerminal):
            why = "recycle_after reached" if term.leases >= self.spec.recycle_after else "unclean"
            self._retire(term, why)
        else:
            self._tg.start_soon(term.aclose)
        self._wake_waiters()
        self._refill()

    def _wake_waiters(self) -> None:
        while self._waiters:
            grant = self._reserve(self._waiters[0].kind)
            if grant is None:
                return
            waiter = self._waiters.popleft()
            waiter.grant = grant
            waiter.event.set()

    # -- keeping warm, recycling ----------------------------------------------------------
    def _retire(self, term: PooledTerminal, reason: str, count: bool = True) -> None:
        if count:
            self.recycled += 1
            if self._on_recycle is not None:
                self._on_recycle(term.id, reason)
        self._tg.start_soon(term.aclose)

    def _refill(self) -> None:
        """Start terminals until `warm` are idle or starting, within capacity."""
        while (
            not self._closed
            and len(self._idle) + self._warming < self.spec.warm
            and self.live < self.capacity
            and not self._waiters
        ):
            self._start_warming(self._tg)

    def _start_warming(self, tg: TaskGroup) -> None:
        self._warming += 1
        self._starting += 1
        tg.start_soon(self._warm_one)

    async def _warm_one(self) -> None:
        try:
            term = await self._open_pooled()
        except BaseException as exc:
            self._warming -= 1
            self._start_failed()
            if isinstance(exc, TerminalError):
                return
            raise
        self._warming -= 1
        self._starting -= 1
        if self._closed:
            await term.aclose()
            return
        self._idle.append(term)
        self._wake_waiters()

    async def _maintain(self) -> None:
        """Replace terminals idle past idle_timeout, then top the pool back up."""
        period = max(0.05, min(1.0, self.spec.idle_timeout / 4))
        while not self._closed:
            await anyio.sleep(period)
            cutoff = time.monotonic() - self.spec.idle_timeout
            for term in [t for t in self._idle if t.idle_since < cutoff]:
                self._idle.remove(term)
                self._retire(term, "idle_timeout")
            self._refill()

    async def prewarm(self) -> None:
        """Start `warm` terminals in parallel and wait until they are ready."""
        needed = min(self.spec.warm, self.capacity) - len(self._idle) - self._warming
        async with anyio.create_task_group() as tg:
            for _ in range(max(0, needed)):
                self._start_warming(tg)

    # -- figures and shutdown -------------------------------------------------------------
    def _record_wait(self, wait: float) -> None:
        self._waits.append(wait)

    def statistics(self) -> PoolStatistics:
        waits = list(self._waits)
        return PoolStatistics(
            capacity=self.capacity,
            size=self.live,
            in_use=len(self._busy),
            idle=len(self._idle),
            starting=self._starting,
            waiters=len(self._waiters),
            leases=self.leases,
            created=self.created,
            recycled=self.recycled,
            wait_p50=percentile(waits, 0.50),
            wait_p95=percentile(waits, 0.95),
            wait_p99=percentile(waits, 0.99),
            utilisation=len(self._busy) / self.capacity,
            saturation=len(self._waiters) / self.capacity,
            contention=self.waited / self.leases if self.leases else 0.0,
        )

    async def aclose(self) -> None:
        """Close every terminal; waiters get PoolClosedError-free cancellation by the caller."""
        self._closed = True
        terms: list[Terminal] = [*self._idle, *self._busy]
        self._idle.clear()
        self._busy.clear()
        with anyio.CancelScope(shield=True):
            for term in terms:
                await term.aclose()


@asynccontextmanager
async def open_pool(
    spec: PoolSpec,
    on_recycle: Callable[[int, str], None] | None = None,
    *,
    session_umask: int | None = None,
    hosts: Sequence[HostSpec] = (),
) -> AsyncIterator[TerminalPool]:
    """Run a pool for the duration of the block; every terminal is closed on exit.

    Its terminals' output comes through a PTY relay process (engine/terminals/relay.py), replaced if
    it dies."""
    failure: BaseException | None = None
    async with anyio.create_task_group() as tg:
        pool = TerminalPool(spec, tg, on_recycle)
        await tg.start(run_relays, pool.adopt_relay)
        await tg.start(run_wardens, pool.adopt_warden, session_umask)
        if hosts:  # only then is asyncssh loaded
            from engine.terminals.hosts.host_registry import HostRegistry

            pool.hosts = HostRegistry(hosts, tg, spec.acquire_timeout, pool.turns)
        try:
            await pool.prewarm()
            tg.start_soon(pool._maintain)
            yield pool
        except BaseException as exc:  # re-raised below, not wrapped in an ExceptionGroup
            failure = exc
        finally:
            await pool.aclose()
            if pool.hosts is not None:
                await pool.hosts.aclose()
            tg.cancel_scope.cancel()
    if failure is not None:
        raise failure
