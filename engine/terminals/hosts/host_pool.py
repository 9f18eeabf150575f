"""One host's pool: warm terminals on it (the launcher on a PTY channel) and fresh ones,
with the local pool's semantics (engine/terminals/pool_core.py; docs/hosts.md).

`pool.size` and `pool.warm` are the host's; recycling (`recycle_after`, `idle_timeout`),
`acquire_timeout` and the `init` each warm terminal runs once are the deck's [pool]. A
session's `terminal = "fresh"` gets a channel of its own (RemoteTerminal), which counts
within the same size and may evict an idle warm terminal, as locally. When the host drops,
its idle warm terminals die with their channels: the pool drops them and warms new ones
once the host answers again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from engine.errors import WarmRefusedError
from engine.terminals.hosts.remote_pooled import RemotePooledTerminal
from engine.terminals.hosts.remote_terminal import RemoteTerminal
from engine.terminals.pool_core import PoolLimits, WarmPool

if TYPE_CHECKING:
    from collections.abc import Callable

    from anyio.abc import TaskGroup

    from engine.terminals.hosts.host_link import HostLink
    from engine.terminals.pool_core import Kind
    from engine.terminals.turns import ReadTurns

log = logging.getLogger(__name__)

HostTerminal = RemotePooledTerminal | RemoteTerminal
"""A terminal on a host, of either kind."""


class HostPool(WarmPool[RemotePooledTerminal, RemoteTerminal]):
    """The terminals of one host, on its one connection."""

    def __init__(
        self,
        link: HostLink,
        limits: PoolLimits,
        tg: TaskGroup,
        turns: ReadTurns,
        on_recycle: Callable[[int, str], None] | None = None,
        init: str = "",
        cols: int = 80,
        rows: int = 24,
    ) -> None:
        super().__init__(limits, tg, turns, on_recycle)
        self.link = link
        self._init, self._cols, self._rows = init, cols, rows
        self.refused: str | None = None
        """Why this host has no warm terminals (its sshd refuses their control stream), if
        it has none: every lease is then a fresh terminal, for the rest of the run."""

    async def acquire(self, kind: Kind = "pooled") -> HostTerminal:
        """As the local pool's; once the host refused warm terminals, a fresh one."""
        if kind == "pooled" and self.refused is None:
            try:
                return await super().acquire(kind)
            except WarmRefusedError:
                pass  # said once (_open); this session runs in a fresh terminal instead
        return await super().acquire("fresh")

    def _refill(self) -> None:
        if self.refused is None:
            super()._refill()

    def _new_warm(self) -> RemotePooledTerminal:
        return RemotePooledTerminal(self.link, self._cols, self._rows)

    async def _open(self, term: RemotePooledTerminal) -> None:
        try:
            await term.open(self._tg, self._init)
        except WarmRefusedError as exc:
            if self.refused is None:
                self.refused = str(exc)
                log.warning("%s", exc)
            raise

    def _new_fresh(self) -> RemoteTerminal:
        return RemoteTerminal(self.link, self._cols, self._rows)

    def _as_warm(self, term: HostTerminal) -> RemotePooledTerminal | None:
        return term if isinstance(term, RemotePooledTerminal) else None

    def _timeout_message(self) -> str:
        return f"host {self.link.name!r}: {super()._timeout_message()}"
