"""What one client may hold of the bus: every resource a connection can make the engine
keep is bounded here, so no session (or stray process) can exhaust the engine's memory or
descriptors. Past a bound the client gets a `limit-exceeded` error frame naming it.

Change them on a live bus by replacing `MessageBus.limits` (tests do, with small values);
the server reads them at each accept and each request.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass, field


def _connection_cap() -> int:
    """1,024, or a quarter of the descriptor limit when that is lower: the rest stays for
    PTYs, pipes, recordings and the journal."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return 1024 if soft == resource.RLIM_INFINITY else max(8, min(1024, soft // 4))


@dataclass(frozen=True, slots=True)
class BusLimits:
    connections: int = field(default_factory=_connection_cap)
    """Open bus connections, in all."""
    unauthenticated: int = 64
    """Connections that have not said hello yet."""
    hello_timeout: float = 10.0
    """Seconds a new connection has to say hello before it is closed."""
    pending: int = 1024
    """Blocking requests (queue.pop, recv, request) waiting at once on one connection."""
    subscriptions: int = 256
    """Subscriptions open on one connection."""
    window: int = 4096
    """Largest `window` a subscription may ask for (messages handed over unread)."""
    outbox: int = 16 << 20
    """Bytes queued to one connection; past it, pushed messages are dropped (best-effort,
    counted and announced) or left to redeliver (reliable, still journalled)."""
    queue_capacity: int = 1_000_000
    """Largest capacity `queue.declare` may set."""
