"""Silence one known, harmless asyncio log line: a cancelled socket wait woken anyway.

anyio's asyncio backend waits for a raw (Unix) socket with
`loop.add_reader(sock, future.set_result, None)` and removes the reader from the future's
done-callback. When the socket becomes ready in the same loop iteration as the task
waiting on it is cancelled (a bus connection's reader sees EOF and cancels its writer,
blocked on a full socket; the writer's wake-up is already queued), the queued
`future.set_result` runs on a cancelled future and the loop logs "Exception in callback
Future.set_result(None) ... InvalidStateError" to stderr. Nothing is lost (the task was
cancelled on purpose), but an operator reads it as a crash (bench/bus_nats.py printed a
dozen). The same class of race was fixed upstream for `aclose` (agronholm/anyio#1267);
this one remains in anyio 4.16.

`quiet_cancelled_wakeups` wraps the running loop's exception handler so that exactly that
case is dropped and everything else still reaches the previous handler (or asyncio's
default).
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["quiet_cancelled_wakeups"]

_MARK = "_swarmdeck_quiet_wakeups"


def _is_cancelled_wakeup(context: dict[str, Any]) -> bool:
    if not isinstance(context.get("exception"), asyncio.InvalidStateError):
        return False
    callback = getattr(context.get("handle"), "_callback", None)
    future = getattr(callback, "__self__", None)
    return (
        isinstance(future, asyncio.Future)
        and getattr(callback, "__name__", "") == "set_result"
        and future.cancelled()
    )


def quiet_cancelled_wakeups(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Install the filter on `loop` (the running one by default); idempotent."""
    loop = loop or asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    if getattr(previous, _MARK, False):
        return

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if _is_cancelled_wakeup(context):
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    setattr(handler, _MARK, True)
    loop.set_exception_handler(handler)
