"""What every terminal on a host shares: one PTY channel's queued reader, input, size, the
signals to a job's process group over short exec channels, and the session-facing calls
that mean nothing over SSH (docs/hosts.md).

Output is read as a local PTY's is (engine/terminals/terminal.py): asyncssh's callback only
queues the bytes; one reader task hands them on (`_hand_on`), at most READ_BUDGET per wake
(TURN_BUDGET, taking turns, while someone else types: engine/terminals/turns.py). Past
PAUSE_AT bytes queued the channel stops reading, so the SSH window holds the program back
as a slow terminal would.

Signals go to a job's group by `kill` over a short exec channel, one at a time, in the
order asked (a stop signal, then SIGCONT), so a pause is reported done once sent.

Two kinds build on it: `RemoteTerminal` (one job per channel, remote_terminal.py) and
`RemotePooledTerminal` (the launcher on the channel, remote_pooled.py).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import anyio
import anyio.lowlevel

from engine.errors import HostError, TerminalError
from engine.terminals.terminal import INTERACTIVE_FOR, READ_BUDGET, TERM, TURN_BUDGET

if TYPE_CHECKING:
    from pathlib import Path

    from anyio.abc import TaskGroup
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from engine.terminals.hosts.host_link import HostLink
    from engine.terminals.hosts.remote_foreground import RemoteForeground
    from engine.terminals.hosts.ssh_link import PtyChannel
    from engine.terminals.terminal import Job
    from engine.terminals.turns import ReadTurns

PAUSE_AT = 256 * 1024  # bytes queued for the sink: the channel stops reading until below
KILL_WAIT = 5.0  # s: a closing terminal's last commands to its host
_ids = itertools.count(1_000_001)  # apart from local terminal ids


def remote_env(job: Job) -> dict[str, str]:
    """A job's environment on a host: the session's and swarmdeck's variables, and TERM."""
    return {"TERM": TERM, "COLORTERM": "truecolor", **job.env}


@dataclass(eq=False)
class _Signal:
    """One signal for a process group, sent in order; `done` once sent (or not: `error`)."""

    sig: int
    group: int
    done: anyio.Event = field(default_factory=anyio.Event)
    error: str | None = None


class RemoteBase:
    """One PTY channel on a host, read through a queue, and its jobs' signals."""

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
        self._pty: PtyChannel | None = None
        self._ended = anyio.Event()  # the channel has closed
        self._signals: MemoryObjectSendStream[_Signal] | None = None
        self._closed = False
        self.slot: object | None = None  # the host slot it holds (engine/terminals/hosts/)
        self.turns: ReadTurns | None = None  # the pool's: floods take turns while one types
        self._queued: deque[bytes] = deque()
        self._queued_bytes = 0
        self._wake = anyio.Event()
        self._paused = False
        self._drained = anyio.Event()  # every byte before the channel's end was handed on
        self.foreground: RemoteForeground | None = None  # at a prompt? asked of the host

    # -- output -------------------------------------------------------------------------
    def _hand_on(self, data: bytes) -> None:
        """Where the channel's bytes go, in order (the reader task calls it)."""
        raise NotImplementedError

    def _enqueue(self, data: bytes) -> None:
        self._queued.append(data)
        self._queued_bytes += len(data)
        self._wake.set()
        if self._queued_bytes >= PAUSE_AT and not self._paused and self._pty is not None:
            self._paused = True
            self._pty.pause_reading()

    def _channel_ended(self) -> None:
        """The channel closed: the reader hands on what is queued, then stops."""
        self._ended.set()
        self._wake.set()

    async def _read_loop(self) -> None:
        """Hand the queued output on until the channel has ended and all is out."""
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
        if self._paused and self._queued_bytes < PAUSE_AT // 2 and self._pty is not None:
            self._paused = False
            self._pty.resume_reading()
        if chunks:
            if self.foreground is not None:
                self.foreground.output()
            self._hand_on(b"".join(chunks))

    # -- input, size ----------------------------------------------------------------------
    async def write(self, data: bytes) -> None:
        if self._pty is None or self._ended.is_set():
            raise TerminalError(f"terminal #{self.id} on host {self.host.name!r} is closed")
        self._input_at = time.monotonic()
        self._pty.write(data)
        await anyio.lowlevel.checkpoint()

    def resize(self, cols: int, rows: int) -> None:
        self.cols, self.rows = cols, rows
        if self._pty is not None and not self._ended.is_set():
            self._pty.resize(cols, rows)

    # -- signals --------------------------------------------------------------------------
    def _start_signals(self, tg: TaskGroup) -> None:
        send, receive = anyio.create_memory_object_stream[_Signal](math.inf)
        self._signals = send
        tg.start_soon(self._send_signals, receive)

    def _group(self, pid: int | None) -> int | None:
        """The process group of job `pid` (default: the running one), if it still runs."""
        job = self.job_pid if pid is None else pid
        return job if job is not None and job == self.job_pid else None

    def signal_job(self, sig: int, pid: int | None = None) -> int:
        """Send `sig` to the job's process group on the host (queued, in order); 1 if sent."""
        group = self._group(pid)
        return 1 if group is not None and self._queue(_Signal(sig, group)) else 0

    async def pause_job(self, pid: int | None = None) -> None:
        await self._signal_and_wait(signal.SIGSTOP, pid)

    async def resume_job(self, pid: int | None = None) -> None:
        await self._signal_and_wait(signal.SIGCONT, pid)

    async def _signal_and_wait(self, sig: int, pid: int | None) -> None:
        """Signal and wait until it was sent; TerminalError if the host could not be told
        (so a pause is not reported done when the job never got SIGSTOP)."""
        group = self._group(pid)
        if group is None:
            return
        order = _Signal(sig, group)
        if self._queue(order):
            await order.done.wait()
        if order.error is not None:
            raise TerminalError(order.error)

    def _queue(self, order: _Signal) -> bool:
        if self._signals is None or self._ended.is_set():
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
                    await self.host.run(f"kill -s {name} -- -{order.group} 2>/dev/null")
                except HostError as exc:  # the host dropped: the job's end says so
                    order.error = f"SIG{name} not sent: {exc}"
                finally:
                    order.done.set()

    async def _kill_on_host(self, groups: list[int]) -> None:
        """SIGKILL process groups on the host, if it is still there (shielded, bounded)."""
        if not groups:
            return
        targets = " ".join(f"-{group}" for group in groups)
        shield, bound = anyio.CancelScope(shield=True), anyio.move_on_after(KILL_WAIT)
        with shield, bound, contextlib.suppress(HostError):
            await self.host.run(f"kill -s KILL -- {targets} 2>/dev/null")

    async def _close_channel(self) -> None:
        """Close the channel and wait (bounded) for sshd to report its end."""
        if self._signals is not None:
            self._signals.close()
        if self._pty is not None:
            self._pty.close()
            with anyio.CancelScope(shield=True), anyio.move_on_after(KILL_WAIT):
                await self._ended.wait()

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
        """At a prompt on the host: the last probe's answer (remote_foreground.py)."""
        if self.foreground is None or self.job_pid is None or self._ended.is_set():
            return False
        return self.foreground.ask(self.job_pid)

    def record(
        self, path: Path, header: dict[str, object], *when_lost_and_rotation: object
    ) -> bool:
        """No relay reads a channel: the session records what its sink gets (so neither
        the relay's loss nor its rotation applies)."""
        return False

    def record_resize(self, cols: int, rows: int) -> None:
        """Recorded by the session (see `record`)."""

    def stop_recording(self, path: Path) -> None:
        """Recorded by the session (see `record`)."""

    def discard_recording(self, path: Path) -> None:
        """Recorded by the session (see `record`)."""

    def close_channel(self) -> None:
        if self._pty is not None:
            self._pty.close()
