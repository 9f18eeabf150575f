"""The engine as a service: a control socket (server.py) and an Engine twin over it
(client.py), speaking the versioned protocol of docs/engine-protocol.md.

These are the names clients (the room, the CLI, SSH) use; the rest is the service's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.lazy_names import lazy_getattr

if TYPE_CHECKING:
    from engine.remote.control_server import (
        open_control_server as open_control_server,
    )
    from engine.remote.protocol import (
        ROLES as ROLES,
    )
    from engine.remote.remote_engine import (
        RemoteEngine as RemoteEngine,
    )
    from engine.remote.remote_engine import (
        open_remote_engine as open_remote_engine,
    )
    from engine.remote.runtime import (
        Registration as Registration,
    )
    from engine.remote.runtime import (
        control_socket_path as control_socket_path,
    )
    from engine.remote.runtime import (
        find_engine as find_engine,
    )
    from engine.remote.runtime import (
        keep_registered as keep_registered,
    )
    from engine.remote.runtime import (
        prune as prune,
    )
    from engine.remote.runtime import (
        register as register,
    )
    from engine.remote.runtime import (
        registrations as registrations,
    )
    from engine.remote.runtime import (
        runtime_root as runtime_root,
    )
    from engine.remote.runtime import (
        serving as serving,
    )
    from engine.remote.runtime import (
        unregister as unregister,
    )

_WHERE: dict[str, str] = {
    "RemoteEngine": "engine.remote.remote_engine",
    "open_remote_engine": "engine.remote.remote_engine",
    "open_control_server": "engine.remote.control_server",
    "ROLES": "engine.remote.protocol",
    "Registration": "engine.remote.runtime",
    "runtime_root": "engine.remote.runtime",
    "control_socket_path": "engine.remote.runtime",
    "prune": "engine.remote.runtime",
    "register": "engine.remote.runtime",
    "unregister": "engine.remote.runtime",
    "keep_registered": "engine.remote.runtime",
    "registrations": "engine.remote.runtime",
    "serving": "engine.remote.runtime",
    "find_engine": "engine.remote.runtime",
}

__all__ = sorted(_WHERE)


__getattr__ = lazy_getattr(__name__, _WHERE, globals())
