"""A pool's leases, warmth, health checks and recycling, whatever its terminals are: local
PTYs (pool.py) or terminals on a host (hosts/host_pool.py).

Leasing never polls: a released terminal (or a freed slot) is handed straight to the
longest waiter. A slot is the right to have one live terminal; `size` bounds warm and
fresh terminals together, so a fresh lease may evict an idle warm terminal. A warm
terminal is health-checked when leased (and, with `idle_check`, every so often while
idle), replaced when it died while idle, retired after `recycle_after` jobs or
`idle_timeout` idle, and the pool keeps `warm` of them ready.

Size: leases, warmth, health checks and recycling act on one set of terminals and waiters.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Generic, Literal, NamedTuple, Protocol, TypeVar

import anyio

from engine.errors import PoolClosedError, PoolTimeoutError, TerminalError
from engine.metrics import percentile
from engine.statistics import PoolStatistics

if TYPE_CHECKING:
    from collections.abc import Callable

    from anyio.abc import TaskGroup

    from engine.deck.spec import PoolSpec
    from engine.terminals.turns import ReadTurns

Kind = Literal["pooled", "fresh"]
_NEW = "new"


class PoolLimits(NamedTuple):
    """How many terminals, how many kept warm, and when they are replaced."""

    size: int
    warm: int
    recycle_after: int
    acquire_timeout: float
    idle_timeout: float
    idle_check: float | None = None  # s between health checks of an idle warm terminal


def limits_of(spec: PoolSpec, size: int | None = None, warm: int | None = None) -> PoolLimits:
    """The deck's [pool] limits (a host's pool has its own size and warmth)."""
    return PoolLimits(
        size=spec.size if size is None else size,
        warm=spec.warm if warm is None else warm,
        recycle_after=spec.recycle_after,
        acquire_timeout=spec.acquire_timeout,
        idle_timeout=spec.idle_timeout,
    )


class AnyTerminal(Protocol):
    id: int
    turns: ReadTurns | None

    async def aclose(self) -> None: ...


class WarmTerminal(AnyTerminal, Protocol):
    leases: int
    idle_since: float

    @property
    def reusable(self) -> bool: ...

    async def check_health(self, timeout: float = 2.0) -> bool: ...

    def take_handover(self, pid: int) -> bool: ...


W = TypeVar("W", bound=WarmTerminal)
F = TypeVar("F", bound=AnyTerminal)


class _Waiter(Generic[W]):
    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        self.event = anyio.Event()
        self.grant: W | str | None = None


class WarmPool(Generic[W, F]):
    """Warm terminals of type W and fresh ones of type F, within one `size`."""

    def __init__(
        self,
        limits: PoolLimits,
        tg: TaskGroup,
        turns: ReadTurns,
        on_recycle: Callable[[int, str], None] | None = None,
    ) -> None:
        self.limits = limits
        self._tg = tg
        self.turns = turns  # every terminal's reader takes turns here when flooding
        self._on_recycle = on_recycle
        self._idle: deque[W] = deque()
        self._busy: set[W | F] = set()
        self._starting = 0
        self._warming = 0
        self._waiters: deque[_Waiter[W]] = deque()
        self._closed = False
        self.leases = self.created = self.recycled = self.waited = 0
        self._waits: deque[float] = deque(maxlen=2048)
        self._checked: dict[int, float] = {}  # terminal id -> its last idle check (monotonic)

    # -- what a kind of pool makes --------------------------------------------------------
    def _new_warm(self) -> W:
        raise NotImplementedError

    async def _open(self, term: W) -> None:
        """Start a new warm terminal (its shell, init, launcher) until it is ready."""
        raise NotImplementedError

    def _new_fresh(self) -> F:
        raise NotImplementedError

    def _as_warm(self, term: W | F) -> W | None:
        """`term` if it is a warm terminal, else None."""
        raise NotImplementedError

    def _timeout_message(self) -> str:
        return (
            f"no terminal became free within {self.limits.acquire_timeout:g}s "
            f"(pool: capacity {self.capacity}, in use {len(self._busy)}, "
            f"idle {len(self._idle)}, starting {self._starting}, "
            f"waiters {len(self._waiters)})"
        )

    @property
    def capacity(self) -> int:
        return self.limits.size

    @property
    def live(self) -> int:
        return len(self._idle) + len(self._busy) + self._starting

    # -- leasing --------------------------------------------------------------------------
    async def acquire(self, kind: Kind = "pooled") -> W | F:
        """Lease a terminal, waiting FIFO up to acquire_timeout."""
        if self._closed:
            raise PoolClosedError("the pool is closed")
        t0 = time.monotonic()
        grant = None if self._waiters else self._reserve(kind)
        if grant is None:
            self.waited += 1
            grant = await self._wait_for_grant(kind)
        term = await self._materialise(kind, grant)
        self._waits.append(time.monotonic() - t0)
        self.leases += 1
        return term

    async def _wait_for_grant(self, kind: Kind) -> W | str:
        waiter: _Waiter[W] = _Waiter(kind)
        self._waiters.append(waiter)
        try:
            with anyio.fail_after(self.limits.acquire_timeout):
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

    def _reserve(self, kind: Kind) -> W | str | None:
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

    def _give_back(self, grant: W | str) -> None:
        if isinstance(grant, str):
            self._starting -= 1
        else:
            self._busy.discard(grant)
            self._idle.appendleft(grant)
        self._wake_waiters()

    async def _materialise(self, kind: Kind, grant: W | str) -> W | F:
        if not isinstance(grant, str):
            if await grant.check_health():
                return grant
            self._busy.discard(grant)
            self._retire(grant, "unhealthy on lease")
            self._starting += 1
        try:
            term: W | F = self._new_fresh() if kind == "fresh" else await self._open_warm()
        except BaseException:
            self._start_failed()
            raise
        self._starting -= 1
        self._busy.add(term)
        term.turns = self.turns  # a warm one has them already
        return term

    async def _open_warm(self) -> W:
        term = self._new_warm()
        term.turns = self.turns
        try:
            await self._open(term)
        except BaseException:  # open() closes what it made; this covers an early failure
            await term.aclose()
            raise
        self.created += 1
        return term

    def _start_failed(self) -> None:
        """A terminal could not start: its slot is free again, so a waiter may take it."""
        self._starting -= 1
        self._wake_waiters()

    def release(self, term: W | F, reusable: bool = True, pid: int | None = None) -> None:
        """Return a lease; hand it to the longest waiter or park it idle (or replace it).
        A terminal whose job `pid` started its follower on exit stays leased: to the
        follower."""
        warm = self._as_warm(term)
        if warm is not None and pid is not None and warm.take_handover(pid):
            self.leases += 1
            return
        self._busy.discard(term)
        if warm is None:
            self._tg.start_soon(term.aclose)
        elif reusable and warm.reusable and not self._closed and warm.leases < self._recycles:
            self._idle.append(warm)
        else:
            why = "recycle_after reached" if warm.leases >= self._recycles else "unclean"
            self._retire(warm, why)
        self._wake_waiters()
        self._refill()

    @property
    def _recycles(self) -> int:
        return self.limits.recycle_after

    def _wake_waiters(self) -> None:
        while self._waiters:
            grant = self._reserve(self._waiters[0].kind)
            if grant is None:
                return
            waiter = self._waiters.popleft()
            waiter.grant = grant
            waiter.event.set()

    # -- keeping warm, recycling ----------------------------------------------------------
    def _retire(self, term: W, reason: str, count: bool = True) -> None:
        self._checked.pop(term.id, None)
        if count:
            self.recycled += 1
            if self._on_recycle is not None:
                self._on_recycle(term.id, reason)
        self._tg.start_soon(term.aclose)

    def _refill(self) -> None:
        """Start terminals until `warm` are idle or starting, within capacity."""
        while (
            not self._closed
            and len(self._idle) + self._warming < self.limits.warm
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
            term = await self._open_warm()
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

    async def maintain(self) -> None:
        """Replace terminals that died while idle or were idle past idle_timeout, then top
        the pool back up."""
        period = max(0.05, min(1.0, self.limits.idle_timeout / 4))
        while not self._closed:
            await anyio.sleep(period)
            cutoff = time.monotonic() - self.limits.idle_timeout
            for term in [t for t in self._idle if not t.reusable]:
                self._idle.remove(term)
                self._retire(term, "died while idle")
            for term in [t for t in self._idle if t.idle_since < cutoff]:
                self._idle.remove(term)
                self._retire(term, "idle_timeout")
            self._check_idle()
            self._refill()

    def _check_idle(self) -> None:
        """Health-check idle warm terminals every `idle_check` seconds, in the background;
        one being checked is out of the idle set (a lease never pings it at the same time)."""
        every = self.limits.idle_check
        if every is None:
            return
        due = time.monotonic() - every
        for term in [t for t in self._idle if self._checked.get(t.id, t.idle_since) < due]:
            self._idle.remove(term)
            self._busy.add(term)
            self._tg.start_soon(self._recheck, term)

    async def _recheck(self, term: W) -> None:
        healthy = await term.check_health()
        self._checked[term.id] = time.monotonic()
        if self._closed or term not in self._busy:
            return  # closed with the pool meanwhile
        self._busy.discard(term)
        if healthy:
            self._idle.appendleft(term)  # it was the longest idle: it stays first
        else:
            self._checked.pop(term.id, None)
            self._retire(term, "unhealthy while idle")
        self._wake_waiters()
        self._refill()

    async def prewarm(self) -> None:
        """Start `warm` terminals in parallel and wait until they are ready."""
        needed = min(self.limits.warm, self.capacity) - len(self._idle) - self._warming
        async with anyio.create_task_group() as tg:
            for _ in range(max(0, needed)):
                self._start_warming(tg)

    # -- figures and shutdown -------------------------------------------------------------
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
        terms: list[W | F] = [*self._idle, *self._busy]
        self._idle.clear()
        self._busy.clear()
        with anyio.CancelScope(shield=True):
            for term in terms:
                await term.aclose()
