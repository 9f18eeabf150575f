"""A terminal on another machine: one SSH `pty-req` channel running one job (docs/hosts.md).

The remote counterpart of `FreshTerminal`: sshd makes the PTY and the login shell its
session leader; that shell execs `sh -c`, which prints its pid after a one-off marker and
execs the job, so the job keeps that pid as its process group and session (the marker's
line is taken out of the output). Signals (pause, resume, terminate) go to that group by
`kill` over a short exec channel, one at a time, in order; the exit status is the
channel's. A connection that drops under the job ends it as *lost* (`HostLostError`,
naming the host): what became of the job is unknown.

Output is read as a local PTY's is (engine/terminals/terminal.py): asyncssh's callback only
queues the bytes; one reader task hands them to the sink, at most READ_BUDGET per wake
(TURN_BUDGET, taking turns, while someone else types: engine/terminals/turns.py). Past
PAUSE_AT bytes queued the channel stops reading, so the SSH window holds the program back
as a slow terminal would.

It offers what a session uses of a terminal (start, output to a sink, input, resize,
signals, the exit) with the same names as engine/terminals/terminal.py; recording and
emulation stay in the engine's session, fed by the sink.

Size: one channel's whole course (the pid marker, the queued reader, input, the signal
queue, the end) and the terminal methods a session calls, which all share its state.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import secrets
import shlex
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import anyio
import anyio.lowlevel

from engine.errors import HostError, HostLostError, SpawnError, TerminalError
from engine.terminals.terminal import (
    INTERACTIVE_FOR,
    READ_BUDGET,
    TERM,
    TURN_BUDGET,
    Ended,
    ExitStatus,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from anyio.abc import TaskGroup
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from engine.terminals.hosts.host_link import HostLink
    from engine.terminals.hosts.ssh_link import PtyChannel
    from engine.terminals.terminal import Job
    from engine.terminals.turns import ReadTurns

MARKER_LIMIT = 64 * 1024  # bytes of login noise (rc files) allowed before the pid marker
PAUSE_AT = 256 * 1024  # bytes queued for the sink: the channel stops reading until below
_ids = itertools.count(1_000_001)  # apart from local terminal ids


def remote_command(job: Job, nonce: str) -> str:
    """The command sshd's login shell runs: print the marker and pid, then become the job
    (environment: `job.env` plus TERM; the working directory: `job.cwd` if given)."""
    env = {"TERM": TERM, "COLORTERM": "truecolor", **job.env}
    assignments = " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())
    cd = f"cd {shlex.quote(job.cwd)} || exit 127; " if job.cwd else ""
    argv = " ".join(shlex.quote(arg) for arg in job.argv)
    script = f'{cd}echo "swarmdeck-pid {nonce} $$"; exec env -- {assignments} {argv}'
    return f"exec sh -c {shlex.quote(script)}"


@dataclass(eq=False)
class _Signal:
    """One signal for the job's group, sent in order; `done` once sent (or not: `error`)."""

    sig: int
    done: anyio.Event = field(default_factory=anyio.Event)
    error: str | None = None


class RemoteTerminal:
    """One job in a PTY on a host, over one channel of the host's connection."""

    kind: Literal["remote"] = "remote"

    def __init__(self, host: HostLink, cols: int, rows: int) -> None:
        self.id = next(_ids)
        self.host = host
        self.cols, self.rows = cols, rows
        self.leases = 0
        self.idle_since = time.monotonic()
        self.job_pid: int | None = None
        self.job_started_at: float | None = None
        self.focused = False
        self._input_at = -math.inf
        self._sink: Callable[[bytes], None] | None = None
        self._channel: PtyChannel | None = None
        self._nonce = secrets.token_hex(8)
        self._held = b""  # output before the pid marker
        self._marked = anyio.Event()  # the pid marker came, or the channel ended first
        self._ended = anyio.Event()
        self._status: ExitStatus | None = None
        self._lost: str | None = None
        self._signals: MemoryObjectSendStream[_Signal] | None = None
        self._closed = False
        self.slot: object | None = None  # the host slot it holds (engine/terminals/hosts/)
        self.turns: ReadTurns | None = None  # the pool's: floods take turns while one types
        self._queued: deque[bytes] = deque()
        self._queued_bytes = 0
        self._wake = anyio.Event()
        self._paused = False
        self._drained = anyio.Event()  # every byte before the channel's end went to the sink

    # -- start --------------------------------------------------------------------------
    async def start(self, job: Job, sink: Callable[[bytes], None], tg: TaskGroup) -> int:
        """Open the channel and wait for the job's pid (SpawnError if it never comes)."""
        self._sink = sink
        self.cols, self.rows = job.cols, job.rows
        command = remote_command(job, self._nonce)
        try:
            self._channel = await self.host.open_pty(
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
        send, receive = anyio.create_memory_object_stream[_Signal](math.inf)
        self._signals = send
        tg.start_soon(self._send_signals, receive)
        tg.start_soon(self._read_loop)
        return self.job_pid

    def _on_data(self, data: bytes) -> None:
        if self.job_pid is None:
            self._find_marker(data)
        else:
            self._enqueue(data)

    def _enqueue(self, data: bytes) -> None:
        self._queued.append(data)
        self._queued_bytes += len(data)
        self._wake.set()
        if self._queued_bytes >= PAUSE_AT and not self._paused and self._channel is not None:
            self._paused = True
            self._channel.pause_reading()

    async def _read_loop(self) -> None:
        """Hand the queued output to the sink until the channel has ended and all is out."""
        try:
            while True:
                if not self._queued:
                    if self._ended.is_set():
                        return
                    self._wake = anyio.Event()
                    await self._wake.wait()  # new bytes, or the channel's end
                    continue
                turns = self.turns
                if turns is None or self.interactive() or not turns.contended():
                    self._deliver(READ_BUDGET)
                    await anyio.lowlevel.checkpoint()
                else:
                    async with turns.turn():
                        self._deliver(TURN_BUDGET)
        finally:
            self._drained.set()

    def _deliver(self, budget: int) -> None:
        chunks, size = [], 0
        while self._queued and size < budget:
            chunk = self._queued.popleft()
            chunks.append(chunk)
            size += len(chunk)
        self._queued_bytes -= size
        if self._paused and self._queued_bytes < PAUSE_AT // 2 and self._channel is not None:
            self._paused = False
            self._channel.resume_reading()
        if self._sink is not None and chunks:
            self._sink(b"".join(chunks))

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
        channel = self._channel
        exited = channel.exited() if channel is not None else None
        if exited is not None:
            self._status = ExitStatus(exited.code, exited.signal)
        elif self._lost is None:
            why = str(exc) if exc is not None else "the channel closed without an exit status"
            self._lost = f"host {self.host.name!r} lost: {why}"
        self._ended.set()
        self._wake.set()  # the reader: nothing more will come
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

    # -- input, size, signals -----------------------------------------------------------
    async def write(self, data: bytes) -> None:
        if self._channel is None or self._ended.is_set():
            raise TerminalError(f"terminal #{self.id} on host {self.host.name!r} is closed")
        self._input_at = time.monotonic()
        self._channel.write(data)
        await anyio.lowlevel.checkpoint()

    def resize(self, cols: int, rows: int) -> None:
        self.cols, self.rows = cols, rows
        if self._channel is not None and not self._ended.is_set():
            self._channel.resize(cols, rows)

    def signal_job(self, sig: int, pid: int | None = None) -> int:
        """Send `sig` to the job's process group on the host (queued, in order); 1 if sent."""
        return 1 if self._queue(_Signal(sig)) else 0

    async def pause_job(self, pid: int | None = None) -> None:
        await self._signal_and_wait(signal.SIGSTOP)

    async def resume_job(self, pid: int | None = None) -> None:
        await self._signal_and_wait(signal.SIGCONT)

    async def _signal_and_wait(self, sig: int) -> None:
        """Signal and wait until it was sent; TerminalError if the host could not be told
        (so a pause is not reported done when the job never got SIGSTOP)."""
        order = _Signal(sig)
        if self._queue(order):
            await order.done.wait()
        if order.error is not None:
            raise TerminalError(order.error)

    def _queue(self, order: _Signal) -> bool:
        if self._signals is None or self.job_pid is None or self._ended.is_set():
            return False
        try:
            self._signals.send_nowait(order)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            return False
        return True

    async def _send_signals(self, receive: MemoryObjectReceiveStream[_Signal]) -> None:
        async with receive:
            async for order in receive:
                name = signal.Signals(order.sig).name.removeprefix("SIG")
                try:
                    await self.host.run(f"kill -s {name} -- -{self.job_pid} 2>/dev/null")
                except HostError as exc:  # the host dropped: the job's end says so
                    order.error = f"SIG{name} not sent: {exc}"
                finally:
                    order.done.set()

    # -- what a session asks of any terminal --------------------------------------------
    def interactive(self) -> bool:
        return self.focused or time.monotonic() - self._input_at < INTERACTIVE_FOR

    def reset_priority(self) -> None:
        self.focused, self._input_at = False, -math.inf

    @property
    def session_id(self) -> int | None:
        """None: its processes are on another machine (no local pid means them)."""
        return None

    def process_session(self) -> int | None:
        return None

    def waits_for_keys(self) -> bool:
        return False  # not known over SSH yet (docs/hosts.md)

    def answer(self, data: bytes) -> None:
        """Answers to the job's terminal queries go back as its input, while it runs."""
        if self._channel is not None and not self._ended.is_set():
            self._channel.write(data)

    @property
    def reusable(self) -> bool:
        return False  # one job per channel

    def record(
        self,
        path: Path,
        header: dict[str, object],
        on_lost: Callable[[], None],
        rotation: tuple[int, int] | None = None,
    ) -> bool:
        """No relay reads a channel: the session records what its sink gets."""
        return False

    def record_resize(self, cols: int, rows: int) -> None:
        """Recorded by the session (see `record`)."""

    def stop_recording(self, path: Path) -> None:
        """Recorded by the session (see `record`)."""

    def discard_recording(self, path: Path) -> None:
        """Recorded by the session (see `record`)."""

    # -- the end ------------------------------------------------------------------------
    def close_channel(self) -> None:
        if self._channel is not None:
            self._channel.close()

    async def aclose(self) -> None:
        """Kill the job's group (if the host is still there), close the channel."""
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            if self._signals is not None:
                self._signals.close()
            if self.job_pid is not None and not self._ended.is_set():
                with anyio.move_on_after(5):
                    with contextlib.suppress(HostError):
                        await self.host.run(f"kill -s KILL -- -{self.job_pid} 2>/dev/null")
            if self._channel is not None:
                self._channel.close()
                with anyio.move_on_after(5):
                    await self._ended.wait()


async def _nothing_more() -> None:
    """Every byte came before the channel's exit report (SSH orders them)."""
