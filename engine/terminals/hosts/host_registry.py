"""The deck's hosts for the pool: one `HostLink` each, and each host's terminal budget.

A session on a host leases a slot of that host's `pool.size` (FIFO, up to the deck's
`acquire_timeout`), then gets a fresh `RemoteTerminal` on the host's one connection;
giving it back closes the terminal and frees the slot. A host with `pool.warm` > 0 is
connected when the engine starts; warm remote terminals (the launcher over a channel)
are the next step (docs/hosts.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import TYPE_CHECKING

import anyio

from engine.errors import HostError, HostKeyError, PoolClosedError, PoolTimeoutError
from engine.terminals.hosts.host_link import HostLink
from engine.terminals.hosts.remote_terminal import RemoteTerminal

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from anyio.abc import TaskGroup

    from engine.deck.host_spec import HostSpec
    from engine.statistics import HostStatistics
    from engine.terminals.turns import ReadTurns

REVIVE_POLL = 0.5  # s between asking a down host's link again (its own backoff: 0.5-30 s)
REVIVE_KEY_WAIT = 30.0  # s: a refused host key has no backoff; only an operator fixes it


class HostRegistry:
    """Every [[host]] of the deck, connected when first used."""

    def __init__(
        self,
        specs: Sequence[HostSpec],
        tg: TaskGroup,
        acquire_timeout: float,
        turns: ReadTurns | None = None,
    ) -> None:
        self._tg = tg
        self._links = {spec.name: HostLink(spec, tg) for spec in specs}
        self._slots = {spec.name: anyio.CapacityLimiter(spec.pool.size) for spec in specs}
        self._held: dict[int, str] = {}  # terminal id -> the host whose slot it holds
        self._acquire_timeout = acquire_timeout
        self._turns = turns  # the pool's: remote floods take turns with local ones
        self._closed = False
        self._reviving: dict[str, anyio.CancelScope] = {}  # host -> its revival, until up
        for spec in specs:
            if spec.pool.warm > 0:  # connected before the first session needs it
                tg.start_soon(self._connect_early, self._links[spec.name])

    @staticmethod
    async def _connect_early(link: HostLink) -> None:
        """A failure here is logged and counted; sessions retry (with backoff) when leased."""
        with contextlib.suppress(HostError):
            await link.link()

    async def acquire(self, host: str, cols: int, rows: int) -> RemoteTerminal:
        """A new terminal on `host`, once one of its pool.size slots is free."""
        if self._closed:
            raise PoolClosedError("the pool is closed")
        slots = self._slots[host]
        token = object()
        with anyio.move_on_after(self._acquire_timeout) as scope:
            await slots.acquire_on_behalf_of(token)
        if scope.cancelled_caught:
            raise PoolTimeoutError(
                f"no terminal on host {host!r} within {self._acquire_timeout:g}s "
                f"({slots.borrowed_tokens} of {slots.total_tokens} in use)"
            )
        term = RemoteTerminal(self._links[host], cols, rows)
        term.slot = token
        term.turns = self._turns
        self._held[term.id] = host
        return term

    def release(self, term: RemoteTerminal) -> None:
        """Close the terminal (in the background) and free its host slot."""
        host = self._held.pop(term.id, None)
        if host is not None:
            self._slots[host].release_on_behalf_of(term.slot)
        self._tg.start_soon(term.aclose)

    def statistics(self) -> list[HostStatistics]:
        """Each link's figures with its slots: how many sessions it runs at once, and now."""
        return [
            dataclasses.replace(
                link.statistics(),
                slots=int(self._slots[name].total_tokens),
                slots_in_use=self._slots[name].borrowed_tokens,
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
        self._closed = True
        for scope in self._reviving.values():
            scope.cancel()
        with anyio.CancelScope(shield=True):
            for link in self._links.values():
                await link.aclose()
