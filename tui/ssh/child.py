"""One control-room process on its own local PTY, pumped by event-loop callbacks.

The child is a session leader with the PTY as controlling terminal (engine/terminals/pty.py's
spawn_on_pty: no fork of the server), so a window change on the master reaches it as
SIGWINCH and a hang-up goes to its whole process group. The PTY is raw before it starts,
exactly as sshd hands a terminal over. Reads and writes never block the loop: output is
read when the master is readable (and not while the SSH channel is flow-controlled),
input is queued and written when the master is writable; `write` says when the queue is
past INPUT_HIGH (tui/ssh/limits.py), and `on_drained` runs once it is back under INPUT_LOW,
so the caller can hold its client back meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tty
from typing import TYPE_CHECKING

from engine import open_pty, read_available, set_winsize, signal_groups, spawn_on_pty
from tui.ssh.limits import INPUT_HIGH, INPUT_LOW

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable, Mapping, Sequence

READ_BUDGET = 256 * 1024


class ChildTerminal:
    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        size: tuple[int, int],
        on_output: Callable[[bytes], None],
        on_exit: Callable[[int], None],
        on_drained: Callable[[], None] | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._on_output, self._on_exit = on_output, on_exit
        self._on_drained = on_drained
        self._full = False
        self.master, slave = open_pty(*size)
        try:
            tty.setraw(slave)
            self.process: subprocess.Popen[bytes] = spawn_on_pty(argv, slave, env=env)
        except BaseException:
            os.close(self.master)
            raise
        finally:
            os.close(slave)
        self._pidfd = os.pidfd_open(self.process.pid)
        self._pending = bytearray()
        self._reading = False
        self._kill: asyncio.TimerHandle | None = None
        self.exited = asyncio.Event()
        self.resume_output()
        self._loop.add_reader(self._pidfd, self._reap)

    @property
    def pid(self) -> int:
        return self.process.pid

    # -- output: PTY -> SSH channel -------------------------------------------------------
    def pause_output(self) -> None:
        if self._reading:
            self._loop.remove_reader(self.master)
            self._reading = False

    def resume_output(self) -> None:
        if not self._reading and not self.exited.is_set():
            self._loop.add_reader(self.master, self._readable)
            self._reading = True

    def _readable(self) -> None:
        data, eof = read_available(self.master, READ_BUDGET)
        if data:
            self._on_output(data)
        if eof:
            self.pause_output()

    # -- input: SSH channel -> PTY --------------------------------------------------------
    def write(self, data: bytes) -> bool:
        """Queue `data` for the child; False once the queue is past INPUT_HIGH (stop
        reading the client until `on_drained`)."""
        if self.exited.is_set():
            return True
        if not self._pending:
            self._loop.add_writer(self.master, self._flush)
        self._pending += data
        self._full = self._full or len(self._pending) > INPUT_HIGH
        return not self._full

    def _flush(self) -> None:
        try:
            written = os.write(self.master, self._pending)
        except BlockingIOError:
            return
        except OSError:  # EIO: the child closed its terminal
            written = len(self._pending)
        del self._pending[:written]
        if not self._pending:
            self._loop.remove_writer(self.master)
        if self._full and len(self._pending) <= INPUT_LOW:
            self._full = False
            if self._on_drained is not None:
                self._on_drained()

    def resize(self, cols: int, rows: int) -> None:
        if not self.exited.is_set() and cols > 0 and rows > 0:
            set_winsize(self.master, cols, rows)

    # -- ending ---------------------------------------------------------------------------
    def hang_up(self, grace: float) -> None:
        """SIGHUP to the child's process group now, SIGKILL if it is still there later."""
        if self.exited.is_set() or self._kill is not None:
            return
        self._signal(signal.SIGHUP)
        self._kill = self._loop.call_later(grace, self._signal, signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(PermissionError):
            signal_groups([self.pid], signum)

    def _reap(self) -> None:
        """The pidfd turned readable: the child exited. Drain its last output, then report."""
        status = self.process.wait()
        if self._reading:
            self._readable()
        self.pause_output()
        if self._pending:
            self._loop.remove_writer(self.master)
        self._loop.remove_reader(self._pidfd)
        if self._kill is not None:
            self._kill.cancel()
        self._signal(signal.SIGKILL)  # anything the child left in its group goes with it
        os.close(self._pidfd)
        os.close(self.master)
        self.exited.set()
        self._on_exit(status)
