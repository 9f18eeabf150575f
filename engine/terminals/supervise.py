"""Keep one helper process (the PTY relay, the warden) running: replace it when it dies.

The terminals made while a helper lived keep what they had (a dead relay's terminals read
their PTYs themselves); new terminals use the replacement.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol, TypeVar

import anyio
import anyio.abc

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractAsyncContextManager

log = logging.getLogger(__name__)

RESTART_DELAY = 1.0  # seconds before replacing a dead helper: no busy loop if it keeps dying


class Helper(Protocol):
    @property
    def pid(self) -> int: ...

    async def wait_dead(self) -> None: ...


H = TypeVar("H", bound=Helper)


async def supervise(
    open_helper: Callable[[], AbstractAsyncContextManager[H | None]],
    adopt: Callable[[H | None], None],
    what: str,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Hand each helper (None: none could start) to `adopt`, replacing one that dies.
    Started once the first one is adopted; returns when none could start."""
    started = False
    while True:
        async with open_helper() as helper:
            adopt(helper)
            if not started:
                started = True
                task_status.started()
            if helper is None:
                return
            await helper.wait_dead()
        log.warning("%s (pid %d) died; starting another", what, helper.pid)
        adopt(None)
        await anyio.sleep(RESTART_DELAY)
