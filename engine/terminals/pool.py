"""The terminal pool: warm local PTYs leased FIFO, health-checked, recycled, kept warm
(the leasing and warmth are pool_core.py's), and the deck's hosts, each with a pool of its
own (engine/terminals/hosts/).

Size: the local kind of pool (pooled and fresh PTYs through the relay and the warden) and
its hand-off to the hosts' pools.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio

from engine.errors import PoolClosedError
from engine.terminals.fresh import FreshTerminal
from engine.terminals.pool_core import Kind, WarmPool, limits_of
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
    from engine.terminals.hosts.host_pool import HostTerminal
    from engine.terminals.hosts.host_registry import HostRegistry
    from engine.terminals.relay import PtyRelay
    from engine.terminals.terminal import Terminal
    from engine.terminals.warden import Warden

__all__ = ["Kind", "TerminalPool", "open_pool"]


class TerminalPool(WarmPool[PooledTerminal, FreshTerminal]):
    """This machine's terminals, and (`hosts`) the way to the deck's hosts' pools."""

    def __init__(
        self,
        spec: PoolSpec,
        tg: TaskGroup,
        on_recycle: Callable[[int, str], None] | None = None,
    ) -> None:
        super().__init__(limits_of(spec), tg, ReadTurns(), on_recycle)
        self.spec = spec
        self._relay: PtyRelay | None = None  # set by run_relays through adopt_relay
        self._warden: Warden | None = None  # set by run_wardens through adopt_warden
        self.hosts: HostRegistry | None = None  # the deck's [[host]]s (docs/hosts.md)

    def adopt_relay(self, relay: PtyRelay | None) -> None:
        """The relay new terminals read through (None: they read their PTYs directly)."""
        self._relay = relay

    def adopt_warden(self, warden: Warden | None) -> None:
        """The warden new terminals start their processes through (engine/terminals/warden.py)."""
        self._warden = warden

    def _new_warm(self) -> PooledTerminal:
        return PooledTerminal(self.spec.cols, self.spec.rows, self._relay, self._warden)

    async def _open(self, term: PooledTerminal) -> None:
        await term.open(self._tg, self.spec.shell, self.spec.init)

    def _new_fresh(self) -> FreshTerminal:
        return FreshTerminal(self.spec.cols, self.spec.rows, self._relay, self._warden)

    def _as_warm(self, term: PooledTerminal | FreshTerminal) -> PooledTerminal | None:
        return term if isinstance(term, PooledTerminal) else None

    async def acquire_remote(self, host: str, kind: Kind = "pooled") -> HostTerminal:
        """Lease a terminal on a [[host]], from that host's own pool."""
        if self.hosts is None:
            raise PoolClosedError(f"no host {host!r} in this pool")
        return await self.hosts.acquire(host, kind)

    def host_statistics(self) -> list[HostStatistics]:
        return self.hosts.statistics() if self.hosts is not None else []

    def forward_bus(self, path: str) -> None:
        """The engine's bus socket: set up on each host as it connects (bus_forward.py)."""
        if self.hosts is not None:
            self.hosts.forward_bus(path)

    def release(
        self, term: Terminal | HostTerminal, reusable: bool = True, pid: int | None = None
    ) -> None:
        """Return a lease (a terminal on a host goes back to its host's pool)."""
        if term.kind == "remote":
            assert self.hosts is not None
            self.hosts.release(term, reusable, pid)
        else:
            assert isinstance(term, PooledTerminal | FreshTerminal)
            super().release(term, reusable, pid)


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

            pool.hosts = HostRegistry(hosts, tg, spec, pool.turns, on_recycle)
        try:
            await pool.prewarm()
            tg.start_soon(pool.maintain)
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
