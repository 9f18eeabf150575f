"""engine/loop_noise.py: anyio's cancelled socket wait, woken in the same loop iteration,
logs an InvalidStateError; the filter drops exactly that and nothing else."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import anyio
import anyio.abc
import pytest

from engine.loop_noise import quiet_cancelled_wakeups

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _race(seen: list[dict[str, Any]]) -> None:
    """A receive on a raw Unix socket stream, cancelled in the loop iteration in which
    its socket becomes readable: the cancel runs first, then the queued wake-up."""
    mine, peer = socket.socketpair(socket.AF_UNIX)
    with peer:
        stream = await anyio.abc.UNIXSocketStream.from_socket(mine)
        async with stream:
            loop = asyncio.get_running_loop()
            task = asyncio.ensure_future(stream.receive())
            for _ in range(3):
                await asyncio.sleep(0)  # it waits on the socket now
            peer.send(b"x")  # readable at once: the next select finds it
            loop.call_soon(task.cancel)  # queued before that select's wake-up
            with pytest.raises(asyncio.CancelledError):
                await task
            for _ in range(3):
                await asyncio.sleep(0)


async def test_a_cancelled_wakeup_is_logged_without_the_filter_and_dropped_with_it() -> None:
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    try:
        await _race(seen)
        assert [type(c.get("exception")) for c in seen] == [asyncio.InvalidStateError]
        seen.clear()
        quiet_cancelled_wakeups()
        await _race(seen)
        assert seen == []
        # anything else still reaches the handler that was there before
        loop.call_soon(lambda: 1 / 0)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert [type(c.get("exception")) for c in seen] == [ZeroDivisionError]
    finally:
        loop.set_exception_handler(None)
