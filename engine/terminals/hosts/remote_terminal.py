"""A fresh terminal on another machine: one SSH `pty-req` channel running one job
(docs/hosts.md).

The remote counterpart of `FreshTerminal`: sshd makes the PTY and the login shell its
session leader; that shell execs `sh -c`, which prints its pid after a one-off marker and
execs the job, so the job keeps that pid as its process group and session (the marker's
line is taken out of the output). The exit status is the channel's. A connection that
drops under the job ends it as *lost* (`HostLostError`, naming the host): what became of
the job is unknown. The channel's queued reader, input, size and signals are
remote_base.py's; recording and emulation stay in the engine's session, fed by the sink.
"""

from __future__ import annotations

import secrets
import shlex
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

import anyio

from engine.errors import HostError, HostLostError, SpawnError
from engine.terminals.hosts.remote_base import RemoteBase, remote_env
from engine.terminals.hosts.remote_foreground import RemoteForeground
from engine.terminals.terminal import TERM, Ended, ExitStatus

if TYPE_CHECKING:
    from collections.abc import Callable

    from anyio.abc import TaskGroup

    from engine.terminals.hosts.host_link import HostLink
    from engine.terminals.terminal import Job

MARKER_LIMIT = 64 * 1024  # bytes of login noise (rc files) allowed before the pid marker


def remote_command(job: Job, nonce: str, path_first: str | None = None) -> str:
    """The command sshd's login shell runs: print the marker and pid, then become the job
    (environment: `job.env` plus TERM; the working directory: `job.cwd` if given;
    `path_first` before the host's PATH: where `swarmdeck` is written, bus_shim.py)."""
    assignments = " ".join(shlex.quote(f"{k}={v}") for k, v in remote_env(job).items())
    cd = f"cd {shlex.quote(job.cwd)} || exit 127; " if job.cwd else ""
    path = f'PATH={shlex.quote(path_first)}:"$PATH"; export PATH; ' if path_first else ""
    argv = " ".join(shlex.quote(arg) for arg in job.argv)
    script = f'{cd}{path}echo "swarmdeck-pid {nonce} $$"; exec env -- {assignments} {argv}'
    return f"exec sh -c {shlex.quote(script)}"


class RemoteTerminal(RemoteBase):
    """One job in a PTY on a host, over one channel of the host's connection."""

    warm: Literal[False] = False  # one job per channel: no follower, no reuse

    def __init__(self, host: HostLink, cols: int, rows: int) -> None:
        super().__init__(host, cols, rows)
        self._sink: Callable[[bytes], None] | None = None
        self._nonce = secrets.token_hex(8)
        self._held = b""  # output before the pid marker
        self._marked = anyio.Event()  # the pid marker came, or the channel ended first
        self._status: ExitStatus | None = None
        self._lost: str | None = None

    # -- start --------------------------------------------------------------------------
    async def start(self, job: Job, sink: Callable[[bytes], None], tg: TaskGroup) -> int:
        """Open the channel and wait for the job's pid (SpawnError if it never comes)."""
        self._sink = sink
        self.cols, self.rows = job.cols, job.rows
        try:
            env, path_first = await self.host.job_env(job.env)
            command = remote_command(replace(job, env=env), self._nonce, path_first)
            self._pty = await self.host.open_pty(
                command, job.cols, job.rows, TERM, self._on_data, self._on_close
            )
        except HostError as exc:
            raise SpawnError(str(exc)) from exc
        with anyio.move_on_after(self.host.spec.connect_timeout):
            await self._marked.wait()
        if self.job_pid is None:
            await self.aclose()
            why = self._lost or (self._status.describe() if self._status else "no pid reported")
            raise SpawnError(f"host {self.host.name!r}: the job did not start ({why})")
        self._start_signals(tg)
        tg.start_soon(self._read_loop)
        self.foreground = RemoteForeground(self.host, tg)
        return self.job_pid

    def _on_data(self, data: bytes) -> None:
        if self.job_pid is None:
            self._find_marker(data)
        else:
            self._enqueue(data)

    def _hand_on(self, data: bytes) -> None:
        if self._sink is not None:
            self._sink(data)

    def _find_marker(self, data: bytes) -> None:
        self._held += data
        tag = f"swarmdeck-pid {self._nonce} ".encode()
        at = self._held.find(tag)
        end = self._held.find(b"\n", at) if at >= 0 else -1
        if end < 0:
            if len(self._held) > MARKER_LIMIT:
                self._lost = "no pid marker in its first output"
                self.close_channel()
            return
        before, pid, after = self._held[:at], self._held[at + len(tag) : end], self._held[end + 1 :]
        self._held = b""
        self.job_pid = int(pid.strip())
        self.job_started_at = time.time()
        self._marked.set()
        for part in (before, after):
            if part:
                self._enqueue(part)

    def _on_close(self, exc: Exception | None) -> None:
        channel = self._pty
        exited = channel.exited() if channel is not None else None
        if exited is not None:
            self._status = ExitStatus(exited.code, exited.signal)
        elif self._lost is None:
            why = str(exc) if exc is not None else "the channel closed without an exit status"
            self._lost = f"host {self.host.name!r} lost: {why}"
        self._channel_ended()
        self._marked.set()  # a start still waiting learns it never will

    # -- the exit -----------------------------------------------------------------------
    async def wait_exit(self, pid: int | None = None) -> Ended:
        """The job's end; HostLostError if the host's connection dropped first."""
        await self._ended.wait()
        ended_at = time.time()
        if self.job_pid is not None:
            await self._drained.wait()  # SSH delivers every byte before the channel's end
        self._sink = None
        if self._status is None:
            raise HostLostError(self._lost or f"host {self.host.name!r} lost")
        return Ended(self._status, _nothing_more, ended_at)

    async def wait(self) -> ExitStatus:
        return (await self.wait_exit()).status

    @property
    def lost(self) -> str | None:
        """Why the job's end is unknown (its host dropped), or None."""
        return self._lost if self._ended.is_set() and self._status is None else None

    def _group(self, pid: int | None) -> int | None:
        """The job's group while its channel is open (its pid is the one sh printed)."""
        return self.job_pid if not self._ended.is_set() else None

    def answer(self, data: bytes) -> None:
        """Answers to the job's terminal queries go back as its input, while it runs."""
        if self._pty is not None and not self._ended.is_set():
            self._pty.write(data)

    @property
    def reusable(self) -> bool:
        return False  # one job per channel

    # -- the end ------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Kill the job's group (if the host is still there), close the channel."""
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            if self._signals is not None:
                self._signals.close()
            if self.job_pid is not None and not self._ended.is_set():
                await self._kill_on_host([self.job_pid])
            await self._close_channel()


async def _nothing_more() -> None:
    """Every byte came before the channel's exit report (SSH orders them)."""
