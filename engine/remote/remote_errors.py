"""Errors of the control socket, on both sides of it.

SwarmdeckError
└── RemoteError                  the control connection failed
    ├── ProtocolError            a frame the other side cannot read (bad JSON, missing field)
    ├── ProtocolVersionError     client and server speak different protocol versions
    ├── UnknownOperationError    `op` is not in the command table
    ├── NotPermittedError        the client's role (viewer) may not run that command
    ├── TooManyClientsError      the server is at its cap of clients (or of hello-less ones)
    └── ConnectionLostError      the socket closed (engine stopped, or this client was dropped)

Engine errors (UnknownSessionError, SessionError, ...) cross the socket unchanged: the
server names the class, the client raises the same class (see protocol.error_from_wire).
"""

from __future__ import annotations

from engine.errors import SwarmdeckError


class RemoteError(SwarmdeckError):
    """Base of every control-socket failure."""


class ProtocolError(RemoteError):
    """A frame was not valid JSON, not an object, or lacked a field the command needs."""


class ProtocolVersionError(RemoteError):
    """The client asked for a protocol version the server does not speak."""


class UnknownOperationError(RemoteError):
    """The frame named a command the server does not have."""


class NotPermittedError(RemoteError):
    """A viewer asked for control or input; only operators may (decided by the server)."""


class TooManyClientsError(RemoteError):
    """The server turned the connection away at once: too many clients (try again later)."""


class ConnectionLostError(RemoteError):
    """The control connection ended; `reason` says why when the server told us."""
