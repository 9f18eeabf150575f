"""Where an admitted session runs: this machine's slots or one of its `[[host]]`s'.

The local pool's slots are `max_parallel` (the scheduler's limit); each host has its own,
`pool.size` of it and never more terminals than its `max_channels` leave room for (one
channel each, `CONTROL_CHANNELS` kept free). A session with `host` takes a slot of one
host of its list, never a local one, so a deck runs as many remote sessions as its hosts
hold, whatever the local pool's size (docs/scheduling.md, "Places").

Which host: the least loaded *up* host of the session's list that has a free slot, at the
moment it starts (not round-robin at load time). Load is the share of a host's slots in
use; a tie goes to the first in the session's turn (replica r, attempt n begins at
`hosts[(r - 1 + n - 1) % len]`, so replicas spread and a retry moves on). A host is *down*
when it is not connected and its last attempt failed or its connection dropped: it is
skipped while another host of the list is not down (the session waits for that one
rather than failing on a dead machine). When every host of the list is down, the session
goes to a free one and fails there with the reason, as its retries say: a dead deck does
not wait forever.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.deck.host_spec import CONTROL_CHANNELS

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from engine.deck.host_spec import HostSpec
    from engine.sessions.session import Session


def host_slots(spec: HostSpec) -> int:
    """Sessions the host runs at once: its pool.size, within its channel budget."""
    return max(1, min(spec.pool.size, spec.max_channels - CONTROL_CHANNELS))


def turn(session: Session) -> list[str]:
    """The session's hosts in the order its next attempt tries them (ties go first)."""
    hosts = list(session.spec.hosts)
    replica = session.replica[0] if session.replica else 1
    start = (replica - 1 + len(session.attempts)) % len(hosts)
    return hosts[start:] + hosts[:start]


class Places:
    """Each host's slots and the sessions holding them (local slots: the scheduler's)."""

    def __init__(self, hosts: Sequence[HostSpec]) -> None:
        self.size = {spec.name: host_slots(spec) for spec in hosts}
        self._holders: dict[str, set[Session]] = {spec.name: set() for spec in hosts}
        self._where: dict[Session, str] = {}

    def in_use(self, host: str) -> int:
        return len(self._holders[host])

    @property
    def remote(self) -> int:
        """Sessions holding a host's slot, all hosts together."""
        return len(self._where)

    def holds(self, session: Session) -> bool:
        """It holds a host's slot (not a local one)."""
        return session in self._where

    def choose(self, session: Session, down: Collection[str]) -> str | None:
        """The host its attempt should start on now, or None: wait (every candidate full)."""
        order = turn(session)
        alive = [host for host in order if host not in down]
        free = [host for host in (alive or order) if self.in_use(host) < self.size[host]]
        if not free:
            return None
        return min(free, key=lambda host: (self.in_use(host) / self.size[host], order.index(host)))

    def take(self, session: Session, host: str) -> None:
        self._holders[host].add(session)
        self._where[session] = host

    def give_back(self, session: Session) -> bool:
        """Free its host slot; False if it held none (a local session)."""
        host = self._where.pop(session, None)
        if host is None:
            return False
        self._holders[host].discard(session)
        return True
