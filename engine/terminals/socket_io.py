"""Reading a non-blocking socket from the event loop, without a transport."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    import socket


async def receive(sock: socket.socket, size: int = 65536) -> bytes:
    """What the socket has once it is readable (one datagram for SEQPACKET); b"" at its
    end. Raises OSError (or anyio.ClosedResourceError) if the socket fails or closes."""
    while True:
        await anyio.wait_readable(sock)
        try:
            return sock.recv(size)
        except BlockingIOError:
            continue
