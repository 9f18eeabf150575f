"""A pooled terminal: a warm PTY whose session leader is the launcher (terminals/launcher.py).

The shell runs the pool's `init` once and execs the launcher, which then runs one job after
another. A job's end is reported on a private control socket, and the output boundary is an
unguessable marker the launcher writes through the PTY, so every byte is attributed to the
right session.

Under load every wake-up between one job's exit and the next one's start costs
milliseconds, so the path is kept short. The terminal takes its next job as soon as the
launcher reports an exit, without waiting for the marker to come through the relay: the
ended job's last bytes, the marker, then the next job's output arrive in that order, and
each part goes to its own job's sink. And the scheduler may give a busy terminal a
*follower* (`follow`): the launcher starts it the moment the running job exits 0, with no
round trip to the engine. The launcher stamps each job's start and end with its own clock.

Size: routing output by end marker, the hand-over and the restore are one state machine over
one PTY; the launcher's channel is channel.py.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

import anyio

from engine.terminals import procs
from engine.terminals.channel import SocketControl
from engine.terminals.launched import LauncherJobs, end_marker, init_script
from engine.terminals.procs import kill_session
from engine.terminals.terminal import ExitStatus, Terminal, base_env
from engine.terminals.warden import spawn_session

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from engine.terminals.hosts.remote_pooled import RemotePooledTerminal
    from engine.terminals.relay import PtyRelay
    from engine.terminals.warden import SessionProcess, Warden

REPORT_GRACE = 8.0  # seconds after SIGKILL the exit report may take (its restore: <= 5)
LAUNCHER = str(Path(__file__).with_name("launcher.py"))


class Follow(NamedTuple):
    """Where a follower waits: the terminal, and the pid of the job it follows."""

    terminal: PooledTerminal | RemotePooledTerminal
    pid: int


class PooledTerminal(LauncherJobs, Terminal):
    """A warm PTY: shell init done once, then any number of jobs, one at a time."""

    kind: Literal["pooled", "fresh"] = "pooled"

    def __init__(
        self, cols: int, rows: int, relay: PtyRelay | None = None, warden: Warden | None = None
    ) -> None:
        self._marker = end_marker()
        super().__init__(cols, rows, relay, warden)
        ctl, self._child_ctl = socket.socketpair()
        ctl.setblocking(False)
        self._init_jobs(SocketControl(ctl))
        self._popen: SessionProcess | None = None

    async def open(self, tg: TaskGroup, shell: str, init: str, timeout: float = 30.0) -> None:
        """Start the shell, run init, exec the launcher and wait until it says ready."""
        launcher = (sys.executable, "-I", "-S", LAUNCHER, str(self._child_ctl.fileno()))
        script = "exec " + " ".join(_quote(a) for a in (*launcher, self._marker.decode()))
        script = init_script(init, script)
        self._sink = self._collect_init_output
        self._init_output = bytearray()
        self._tg = tg
        try:  # from the first task on: a pool closing meanwhile must not leak this PTY
            tg.start_soon(self._read_loop)
            tg.start_soon(self._channel.read)
            self._popen = await spawn_session(
                self._warden, [shell, "-c", script], self._slave, env=base_env(),
                pass_fds=[self._child_ctl.fileno()],
            )  # fmt: skip
        except BaseException:
            await self.aclose()
            raise
        self._child_ctl.close()
        os.close(self._slave)
        self._slave = -1
        await self._until_ready(timeout, self._eof)
        self._sink = None

    def _end_marker(self) -> bytes:
        return self._marker

    def _failure(self, exc: BaseException) -> str:
        why = "no answer (timeout)" if isinstance(exc, TimeoutError) else str(exc)
        rc = self._popen.returncode if self._popen is not None else None
        if rc is not None and rc != -signal.SIGKILL:
            why = f"shell {ExitStatus.from_returncode(rc).describe()}"
        out = self._init_output.decode(errors="replace").strip()
        detail = f"; it printed: {out[-500:]}" if out else ""
        return f"pooled terminal did not start: pool init failed ({why}){detail}"

    def _collect_init_output(self, data: bytes) -> None:
        self._init_output += data
        del self._init_output[:-4096]  # the tail says what went wrong

    # -- output -------------------------------------------------------------------------
    def _deliver(self, data: bytes) -> None:
        if self._sink is not None:  # the shell's init
            self._sink(data)
        else:
            self._route(data)

    def _output_ended(self) -> bool:
        return self._eof.is_set()

    def _leader_alive(self, pid: int) -> bool:
        return procs.alive(pid)

    async def check_health(self, timeout: float = 2.0) -> bool:
        """Alive, with its output boundary intact, and answering a ping."""
        if self._closed or self._eof.is_set() or self._popen is None:
            return False
        if self._popen.poll() is not None:
            return False
        return await self._launcher_answers(timeout)

    def _session_id(self) -> int | None:
        return self.launcher_pid

    def _own_group(self) -> int | None:
        return self.launcher_pid

    async def aclose(self) -> None:
        """Kill the launcher and everything on this PTY, then release the fds; shielded,
        so a cancelled engine (an exception in its block) still leaks no fd or process."""
        self._closed = True
        with anyio.CancelScope(shield=True):
            await self._channel.aclose()
            if self._popen is not None:
                if self.launcher_pid is None:  # failed start: learn how the shell ended
                    await self._popen.wait(0.2)
                await kill_session(self._popen.pid, self._popen)
            await self._close_fds()
        if self._child_ctl.fileno() >= 0:
            self._child_ctl.close()


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"
