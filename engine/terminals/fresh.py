"""A fresh terminal: a PTY made for one job, whose process is its session leader."""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING, Literal

import anyio

from engine.terminals import procs
from engine.terminals.procs import kill_session
from engine.terminals.terminal import Ended, ExitStatus, Job, Terminal, base_env
from engine.terminals.warden import spawn_session

if TYPE_CHECKING:
    from collections.abc import Callable

    from anyio.abc import TaskGroup

    from engine.terminals.relay import PtyRelay
    from engine.terminals.warden import SessionProcess, Warden


class FreshTerminal(Terminal):
    """A PTY made for one job; the job is its session leader."""

    kind: Literal["pooled", "fresh"] = "fresh"

    def __init__(
        self, cols: int, rows: int, relay: PtyRelay | None = None, warden: Warden | None = None
    ) -> None:
        super().__init__(cols, rows, relay, warden)
        self._popen: SessionProcess | None = None

    async def start(self, job: Job, sink: Callable[[bytes], None], tg: TaskGroup) -> int:
        """Size the PTY for the job and spawn it as the PTY's session leader."""
        self.resize(job.cols, job.rows)
        self._sink = sink
        self._tg = tg
        env = base_env(job.env)
        self._popen = await spawn_session(self._warden, job.argv, self._slave, env=env, cwd=job.cwd)
        self.job_started_at = time.time()
        os.close(self._slave)
        self._slave = -1
        self.job_pid = self._popen.pid
        # Read only once the spawn has returned: the warden answers asynchronously, and no
        # output may reach the session before it knows its job runs (it is still spawning).
        tg.start_soon(self._read_loop)
        return self.job_pid

    async def wait_exit(self, pid: int | None = None) -> Ended:
        """The job's end and every byte it printed: a fresh terminal serves no other job."""
        assert self._popen is not None
        rc = await self._popen.wait(float("inf"))
        assert rc is not None
        ended_at = time.time()
        procs.signal_groups(procs.session_groups(self._popen.pid), signal.SIGKILL)
        with anyio.move_on_after(2.0):
            await self._eof.wait()
        self.job_pid = None
        self._sink = None
        return Ended(ExitStatus.from_returncode(rc), _nothing_more, ended_at)

    def _session_id(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    async def aclose(self) -> None:
        self._closed = True
        with anyio.CancelScope(shield=True):  # a cancelled engine still leaks nothing
            if self._popen is not None:
                await kill_session(self._popen.pid, self._popen)
            await self._close_fds()


async def _nothing_more() -> None:
    """All of a fresh terminal's output is in once its job has ended."""
