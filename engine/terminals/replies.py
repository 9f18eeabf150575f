"""Answers to a job's terminal queries (DA, DSR/CPR), written back to its PTY.

A real terminal whose program does not read its input stops answering once the input
buffer is full; so does this: what the kernel does not take at once waits here, up to
REPLY_CAP bytes, and whole answers beyond that are dropped (a program asking in a loop
without reading cost the engine ~1 GB of queued writes). An answer belongs to the job
whose output asked: it is written only while that job lives (`alive`, asked again just
before every write), else dropped, so none becomes the next job's keyboard input.

While the tty is in canonical mode with echo (a shell script's default) an answer is held:
written then, it could not be read before a newline and would be echoed onto the screen
as `^[[?1;2c`. A program that wants the answer turns echo or canonical mode off to read
it (`read -s -d R` does), and gets it then; one that ends first never sees it.
"""

from __future__ import annotations

import os
import termios
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from collections.abc import Callable

    from anyio.abc import TaskGroup

REPLY_CAP = 4096  # bytes waiting for the program to read; the kernel holds ~16-20 KiB more
HOLD_RECHECK = (0.01, 1.0)  # seconds between looks at a cooked tty's modes: first, longest


@dataclass(frozen=True)
class ReplyStatistics:
    """Bytes written, waiting and dropped since the terminal was made."""

    written: int
    pending: int
    dropped: int


class ReplyWriter:
    """Bounded, job-bound writes of answers to one PTY master."""

    def __init__(self, fd: Callable[[], int], lock: anyio.Lock) -> None:
        self._fd = fd
        self._lock = lock  # the terminal's input lock: answers never split a paste
        self._pending = bytearray()
        self._for: object = None  # the job the pending bytes answer
        self._draining = False
        self._scope = anyio.CancelScope()
        self._done = anyio.Event()
        self._done.set()
        self.written = self.dropped = 0

    def offer(
        self, job: object, data: bytes, alive: Callable[[object], bool], tg: TaskGroup | None
    ) -> None:
        """Write `data`, an answer to job `job`, now if the PTY takes it; else keep it."""
        if self._pending and self._for != job:
            self._drop_pending()
        if len(self._pending) + len(data) > REPLY_CAP or not alive(job):
            self.dropped += len(data)
            return
        self._for = job
        if not self._pending and not self._lock.locked() and not self._cooked():
            data = data[self._write_now(data) :]
        if data:
            self._pending += data
            if not self._draining and tg is not None:
                self._draining = True
                self._done = anyio.Event()
                tg.start_soon(self._drain, alive)

    def statistics(self) -> ReplyStatistics:
        return ReplyStatistics(self.written, len(self._pending), self.dropped)

    def _cooked(self) -> bool:
        """Canonical mode with echo: an answer written now would only be echoed."""
        try:
            lflag = termios.tcgetattr(self._fd())[3]  # a PTY master reads the slave's modes
        except (OSError, termios.error):
            return False
        return bool(lflag & termios.ICANON and lflag & termios.ECHO)

    def _write_now(self, data: bytes | bytearray) -> int:
        try:
            n = os.write(self._fd(), data)
        except BlockingIOError:
            return 0
        except OSError:  # the PTY is gone: nobody to answer
            n = len(data)
            self.dropped += n
            return n
        self.written += n
        return n

    async def aclose(self) -> None:
        """Give up what waits: the fd must leave the event loop before it is closed."""
        self._scope.cancel()
        with anyio.CancelScope(shield=True):
            await self._done.wait()
        self._drop_pending()

    async def _drain(self, alive: Callable[[object], bool]) -> None:
        """Write what waits as the program reads; the lock is held for writes only, so
        the operator's typing never waits behind a program that does not read."""
        wait = HOLD_RECHECK[0]
        try:
            with self._scope:
                while self._pending:
                    if self._for is None or not alive(self._for):
                        self._drop_pending()
                        return
                    if self._cooked():  # the kernel says nothing when modes change: look
                        await anyio.sleep(wait)
                        wait = min(wait * 2, HOLD_RECHECK[1])
                        continue
                    async with self._lock:
                        del self._pending[: self._write_now(self._pending)]
                    if self._pending:
                        await anyio.wait_writable(self._fd())
        except (OSError, anyio.ClosedResourceError):
            self._drop_pending()
        finally:
            self._draining = False
            self._done.set()

    def _drop_pending(self) -> None:
        self.dropped += len(self._pending)
        self._pending.clear()
