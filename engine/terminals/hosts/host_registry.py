"""The deck's hosts for the pool: one `HostLink` and one `HostPool` each.

A session on a host leases a terminal from that host's pool (FIFO, within its
`pool.size`, up to the deck's `acquire_timeout`): a warm one by default, a fresh channel
for `terminal = "fresh"`. A host with `pool.warm` > 0 is connected, and its warm terminals
started, when the engine starts (in the background: an unreachable host does not hold the
engine back; its pool keeps trying, within the link's backoff).
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import TYPE_CHECKING

import anyio

from engine.errors import HostError, HostKeyError, PoolClosedError
from engine.terminals.hosts.host_link import HostLink
from engine.terminals.hosts.host_pool import HostPool
from engine.terminals.pool_core import limits_of

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from anyio.abc import TaskGroup

    from engine.deck.host_spec import HostSpec
    from engine.deck.spec import PoolSpec
    from engine.statistics import HostStatistics
    from engine.terminals.hosts.host_pool import HostTerminal
    from engine.terminals.pool_core import Kind
    from engine.terminals.turns import ReadTurns

REVIVE_POLL = 0.5  # s between asking a down host's link again (its own backoff: 0.5-30 s)
REVIVE_KEY_WAIT = 30.0  # s: a refused host key has no backoff; only an operator fixes it


class HostRegistry:
    """Every [[host]] of the deck, connected when first used (or at start, if warm)."""

    def __init__(
        self,
        specs: Sequence[HostSpec],
        tg: TaskGroup,
        deck_pool: PoolSpec,
        turns: ReadTurns,
        on_recycle: Callable[[int, str], None] | None = None,
    ) -> None:
        self._links = {spec.name: HostLink(spec, tg) for spec in specs}
        self._tg = tg
        self._pools: dict[str, HostPool] = {}
        self._reviving: dict[str, anyio.CancelScope] = {}  # host -> its revival, until up
        for spec in specs:
            limits = limits_of(deck_pool, spec.pool.size, spec.pool.warm)
            limits = limits._replace(idle_check=spec.keepalive)  # pinged as often as probed
            link, shape = self._links[spec.name], (deck_pool.init, deck_pool.cols, deck_pool.rows)
            pool = HostPool(link, limits, tg, turns, on_recycle, *shape)
            self._pools[spec.name] = pool
            tg.start_soon(self._keep_warm, pool)
        self._closed = False

    @staticmethod
    async def _keep_warm(pool: HostPool) -> None:
        """Warm the host's terminals now (failures are logged and counted by the link),
        then keep them warm and recycled."""
        if pool.limits.warm > 0:
            with contextlib.suppress(Exception):
                await pool.prewarm()
        await pool.maintain()

    async def acquire(self, host: str, kind: Kind = "pooled") -> HostTerminal:
        """A terminal on `host` from its pool (PoolTimeoutError naming the host)."""
        if self._closed:
            raise PoolClosedError("the pool is closed")
        return await self._pools[host].acquire(kind)

    def release(self, term: HostTerminal, reusable: bool = True, pid: int | None = None) -> None:
        """Back to its host's pool: parked warm, handed on, or closed in the background."""
        self._pools[term.host.name].release(term, reusable, pid)

    def forward_bus(self, path: str) -> None:
        for link in self._links.values():
            link.forward_bus(path)

    def statistics(self) -> list[HostStatistics]:
        """Each link's figures with its slots: how many sessions it runs at once, and now."""
        return [
            dataclasses.replace(
                link.statistics(),
                slots=self._pools[name].limits.size,
                slots_in_use=self._pools[name].statistics().in_use,
                warm_problem=self._pools[name].refused,
            )
            for name, link in self._links.items()
        ]

    # -- bringing a down host back (the scheduler skips it meanwhile) ----------------------
    def revive(self, host: str, on_up: Callable[[], None]) -> None:
        """Connect to a down `host` again in the background until it is up, then call
        `on_up` (the scheduler dispatches what waited for it). Idempotent per host."""
        if self._closed or host in self._reviving:
            return
        self._reviving[host] = scope = anyio.CancelScope()
        self._tg.start_soon(self._revive, host, on_up, scope)

    async def _revive(self, host: str, on_up: Callable[[], None], scope: anyio.CancelScope) -> None:
        link = self._links[host]
        try:
            with scope:
                while not self._closed:
                    try:
                        await link.link()
                    except HostKeyError:
                        await anyio.sleep(REVIVE_KEY_WAIT)
                        continue
                    except HostError:  # within its backoff it refuses at once: poll
                        await anyio.sleep(REVIVE_POLL)
                        continue
                    on_up()
                    return
        finally:
            del self._reviving[host]

    async def aclose(self) -> None:
        """Close every host's terminals (killing their jobs there), then the connections."""
        self._closed = True
        for scope in self._reviving.values():
            scope.cancel()
        with anyio.CancelScope(shield=True):
            for pool in self._pools.values():
                await pool.aclose()
            for link in self._links.values():
                await link.aclose()
