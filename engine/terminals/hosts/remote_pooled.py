"""A warm terminal on another machine: the unchanged launcher on one PTY channel of the
host's connection, serving one job after another (docs/hosts.md).

The remote counterpart of `PooledTerminal`. The channel's command runs the pool's `init`
in the host's `sh` once, then execs the launcher's bootstrap (remote_launcher.py), which
listens on a Unix socket on the host and says so on the PTY; the engine reaches that
socket over the same connection (`HostLink.unix_stream`) and speaks the launcher's
protocol on it (`LauncherChannel`). From then on it is a pooled terminal whose bytes come
from the channel's queue (remote_base.py) instead of a PTY fd: each job's output is routed
by its end marker (engine/terminals/launched.py), so a job reused after another sees none
of its output, and its exit status is the launcher's report. It costs two of the host's
`max_channels` (the PTY and the control stream) for as long as it is warm.

A connection that drops under it closes both channels: a running job ends as *lost*
(`HostLostError`, naming the host), and an idle terminal is no longer `reusable`, so its
pool drops it and warms a new one once the host is back.
"""

from __future__ import annotations

import secrets
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

import anyio

from engine.errors import (
    HostError,
    HostForwardError,
    HostLostError,
    SpawnError,
    TerminalError,
    WarmRefusedError,
)
from engine.terminals.hosts.remote_base import RemoteBase, remote_env
from engine.terminals.hosts.remote_foreground import RemoteForeground
from engine.terminals.hosts.remote_launcher import launcher_command, ready_line
from engine.terminals.launched import LauncherJobs, end_marker
from engine.terminals.terminal import TERM, ExitStatus, Job

if TYPE_CHECKING:
    from collections.abc import Callable

    from anyio.abc import TaskGroup

    from engine.terminals.channel import JobRun
    from engine.terminals.hosts.host_link import HostLink
    from engine.terminals.hosts.ssh_link import UnixStream

INIT_OUTPUT_LIMIT = 64 * 1024  # bytes of init output kept before the ready line
LOSS_NOTICE = 1.0  # s the PTY channel's end may trail the control stream's on a drop


class _LaterStream:
    """The launcher's control stream, once its socket listens: the channel's reader may
    start at once, and a request sent before (none is) fails like a closed stream."""

    def __init__(self) -> None:
        self.stream: UnixStream | None = None
        self.attached = anyio.Event()

    def attach(self, stream: UnixStream | None) -> None:
        self.stream = stream
        self.attached.set()

    def send(self, data: bytes) -> None:
        if self.stream is None:
            raise OSError("the launcher's stream is not open")
        self.stream.send(data)

    async def receive(self) -> bytes:
        await self.attached.wait()
        return await self.stream.receive() if self.stream is not None else b""

    def close(self) -> None:
        """Closed with its channel by the terminal (`HostLink.unix_stream`'s block)."""
        self.attached.set()


class RemotePooledTerminal(LauncherJobs, RemoteBase):
    """A warm PTY on a host: init done once, then any number of jobs, one at a time."""

    warm: Literal[True] = True  # reused, and may take a follower

    def __init__(self, host: HostLink, cols: int, rows: int) -> None:
        super().__init__(host, cols, rows)
        self._marker = end_marker()
        self._nonce = secrets.token_hex(8)
        self._control = _LaterStream()
        self._init_jobs(self._control)
        self._listening = anyio.Event()  # the ready line came (or the channel ended first)
        self._init_output = bytearray()  # what init printed before the ready line
        self._stack = AsyncExitStack()  # the control stream's channel
        self._status: ExitStatus | None = None  # how the launcher's channel ended
        self._lost: str | None = None  # the connection dropped under it: why
        self._shut = False

    @property
    def nonce(self) -> str:
        """Names the launcher's socket on the host (/tmp/swarmdeck-launcher-NONCE.sock)."""
        return self._nonce

    # -- start ----------------------------------------------------------------------------
    async def open(self, tg: TaskGroup, init: str, timeout: float = 30.0) -> None:
        """Open the channel, run init, connect to the launcher and wait until it is ready
        (SpawnError saying why not, with the tail of what init printed)."""
        command, path = launcher_command(self._nonce, self._marker, init)
        try:
            self._pty = await self.host.open_pty(
                command, self.cols, self.rows, TERM, self._on_data, self._on_close
            )
        except HostError as exc:
            raise SpawnError(str(exc)) from exc
        tg.start_soon(self._channel.read)
        tg.start_soon(self._read_loop)
        self._start_signals(tg)
        self.foreground = RemoteForeground(self.host, tg)
        try:
            await self._until_ready(timeout, self._ended, lambda: self._connect(path, timeout))
        except SpawnError as exc:
            if isinstance(exc.__cause__, HostForwardError):
                raise WarmRefusedError(
                    f"host {self.host.name!r}: its sshd refused the warm terminal's control "
                    f"stream ({exc.__cause__.__cause__ or exc.__cause__}); its sessions run "
                    "in fresh terminals (the host's sshd_config needs "
                    "AllowStreamLocalForwarding yes, and no DisableForwarding)"
                ) from exc.__cause__
            raise

    async def _connect(self, path: str, timeout: float) -> None:
        """Once the bootstrap listens (its ready line came), connect to its socket."""
        with anyio.fail_after(timeout):
            await self._listening.wait()
        if self._ended.is_set():
            raise TerminalError("its channel ended")
        self._control.attach(await self._stack.enter_async_context(self.host.unix_stream(path)))

    def _failure(self, exc: BaseException) -> str:
        why = "no answer (timeout)" if isinstance(exc, TimeoutError) else str(exc)
        if self._lost is not None:
            why = self._lost
        elif self._status is not None:
            why = f"shell {self._status.describe()}"
        out = self._init_output.decode(errors="replace").strip()
        detail = f"; it printed: {out[-500:]}" if out else ""
        no_python = self._status == ExitStatus(127) and b"python3" in self._init_output
        what = "python3 not found on the host" if no_python else "pool init failed"
        return f"pooled terminal on host {self.host.name!r} did not start: {what} ({why}){detail}"

    def _on_data(self, data: bytes) -> None:
        if self._listening.is_set():
            self._enqueue(data)
            return
        self._init_output += data
        line = ready_line(self._nonce)
        at = self._init_output.find(line)
        end = self._init_output.find(b"\n", at) if at >= 0 else -1
        if end < 0:
            del self._init_output[:-INIT_OUTPUT_LIMIT]
            return
        rest = bytes(self._init_output[end + 1 :])
        del self._init_output[at:]
        self._listening.set()
        if rest:  # nothing runs yet: the launcher writes nothing before a job
            self._enqueue(rest)

    def _hand_on(self, data: bytes) -> None:
        self._route(data)

    def _on_close(self, exc: Exception | None) -> None:
        exited = self._pty.exited() if self._pty is not None else None
        if exited is not None:
            self._status = ExitStatus(exited.code, exited.signal)
        else:
            why = str(exc) if exc is not None else "the channel closed without an exit status"
            self._lost = f"host {self.host.name!r} lost: {why}"
        self._closed = True  # never reused: its launcher is gone
        self._channel_ended()
        self._listening.set()  # an open still waiting learns it never will

    # -- jobs -----------------------------------------------------------------------------
    async def start(
        self, job: Job, sink: Callable[[bytes], None], tg: TaskGroup | None = None
    ) -> int:
        """Dispatch a job to the launcher (the host's environment, TERM, the session's
        variables, its bus at the host's forwarded socket); return its pid on the host
        (also its process group id)."""
        env, path_first = await self.host.job_env(job.env)
        return await super().start(_on_host(replace(job, env=env, path_first=path_first)), sink)

    def follow(
        self, job: Job, sink: Callable[[bytes], None], on_drop: Callable[[], None], after: int
    ) -> JobRun:
        """The launcher starts `job` (as `start` would) the moment job `after` exits 0."""
        return super().follow(_on_host(job), sink, on_drop, after)

    async def _lost_launcher(self) -> None:
        """The launcher's report never came: its host dropped (HostLostError), or it died."""
        with anyio.move_on_after(LOSS_NOTICE):  # the two channels end in either order
            await self._ended.wait()
        if self._lost is not None:
            raise HostLostError(self._lost)
        self._channel.check()

    def _output_ended(self) -> bool:
        return self._drained.is_set()

    def answer(self, data: bytes) -> None:
        """Answers to a job's terminal queries, into the input of the job that asked."""
        if self.answering() is not None and self._pty is not None and not self._ended.is_set():
            self._pty.write(data)

    async def check_health(self, timeout: float = 2.0) -> bool:
        """Its channel open, its output boundary intact, and the launcher answering."""
        if self._closed or self._ended.is_set():
            return False
        return await self._launcher_answers(timeout)

    # -- the end --------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Kill a running job's group and the launcher (if the host is still there), then
        close both channels; shielded, so a cancelled engine leaves nothing on the host.
        An idle launcher ends by itself when its control stream closes."""
        if self._shut:
            return
        self._shut = self._closed = True
        with anyio.CancelScope(shield=True):
            if self.job_pid is not None and not self._ended.is_set():
                launcher = self.launcher_pid
                await self._kill_on_host([self.job_pid, *([launcher] if launcher else [])])
            await self._channel.aclose()
            await self._stack.aclose()
            await self._close_channel()


def _on_host(job: Job) -> Job:
    """The job with its environment on the host (TERM, the session's variables)."""
    return replace(job, env=remote_env(job))
