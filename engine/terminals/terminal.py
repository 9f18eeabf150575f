"""A terminal: one PTY, the process on it, and the event-loop-driven reader of its output.

Two kinds share what is here (the read loop, input, size, signals, reaping):
`PooledTerminal` (engine/terminals/pooled.py) keeps a launcher as the PTY's session leader
and runs one job after another; `FreshTerminal` (engine/terminals/fresh.py) runs one job as
the PTY's session leader and is closed afterwards.

Size: the shared base of both kinds of terminal (read loop, input, size, signals, replies).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import shutil
import signal
import sys
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, NamedTuple

import anyio

from engine.errors import TerminalError
from engine.terminals import procs
from engine.terminals.foreground import waits_for_keys
from engine.terminals.pty import open_pty, read_available, set_winsize
from engine.terminals.replies import ReplyStatistics, ReplyWriter

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping
    from pathlib import Path

    from anyio.abc import TaskGroup

    from engine.terminals.relay import PtyRelay
    from engine.terminals.turns import ReadTurns
    from engine.terminals.warden import Warden


TERM = "xterm-256color"  # what the engine emulates, so what every program is told
READ_BUDGET = 64 * 1024  # bytes per wake-up: large reads, yet fair to other terminals
TURN_BUDGET = 16 * 1024
"""A flood's read while someone types: emulating 64 KiB of `yes` lines held the loop ~10 ms
on a loaded machine, and a typed key's hop waited for all of it (the rest after each slice,
engine/terminals/turns.py, keeps the floods' share the same with smaller slices)."""
INTERACTIVE_FOR = 1.0  # s after a write: the terminal counts as typed into (fairness)
_ids = itertools.count(1)


@dataclass(frozen=True)
class ExitStatus:
    """How a job ended: an exit code, or the signal that killed it (neither: unknown)."""

    code: int | None
    signal: int | None = None

    @property
    def ok(self) -> bool:
        return self.code == 0

    def describe(self) -> str:
        if self.code is None and self.signal is None:
            return "exit status unknown: its terminal was lost"
        if self.signal is not None:
            return f"killed by {signal.Signals(self.signal).name}"
        return f"exit {self.code}"

    @classmethod
    def from_returncode(cls, rc: int) -> ExitStatus:
        return cls(None, -rc) if rc < 0 else cls(rc)


class Ended(NamedTuple):
    """How a job ended (see `Terminal.wait_exit`)."""

    status: ExitStatus
    drained: Callable[[], Awaitable[None]]  # waits for the rest of its output
    ended_at: float  # wall clock, taken where the job was reaped


@dataclass(frozen=True)
class Job:
    """One command to run on a terminal."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    cols: int = 80
    rows: int = 24
    path_first: str | None = None
    """A directory put before the PATH the job inherits (on a host: where `swarmdeck bus`
    is written, engine/terminals/hosts/bus_shim.py)."""


class Terminal(ABC):
    """Shared PTY plumbing: the non-blocking read loop, input, resize, signals."""

    kind: Literal["pooled", "fresh"]

    def __init__(
        self, cols: int, rows: int, relay: PtyRelay | None = None, warden: Warden | None = None
    ) -> None:
        self.id = next(_ids)
        self.master, self._slave = open_pty(cols, rows)
        self._relay = relay
        self._warden = warden  # starts the terminal's processes (None: started directly)
        self._pipe = relay.attach(self.id, self.master, self._end_marker()) if relay else None
        """The relay's pipe carrying this PTY's output; None: the reader reads the PTY."""
        self._recordings: dict[Path, Callable[[], None]] = {}
        """The relay's recordings of this PTY (more than one while a job's last bytes are
        still on their way and the next jobs are ordered), each with what to call when the
        relay dies: the session's records take over before the reader's first byte."""
        self.leases = 0
        self.idle_since = time.monotonic()
        self.job_pid: int | None = None
        self.job_started_at: float | None = None  # wall clock, taken where the job is spawned
        self._sink: Callable[[bytes], None] | None = None
        self._eof = anyio.Event()
        self._write_lock = anyio.Lock()
        self._replies = ReplyWriter(lambda: self.master, self._write_lock)
        self._tg: TaskGroup | None = None  # where the reader runs, and any reply writes
        self._reader_scope: anyio.CancelScope | None = None
        self._reader_done: anyio.Event | None = None
        self._closed = False
        self.turns: ReadTurns | None = None  # set by the pool: readers that are not
        # interactive take turns there (engine/terminals/turns.py)
        self._focused = False
        self._input_at = -math.inf
        self._told_until = -math.inf  # how long the relay believes us interactive

    # -- fairness -------------------------------------------------------------------------
    def interactive(self) -> bool:
        """Focused in an operator room, or written to in the last INTERACTIVE_FOR s."""
        return self._focused or time.monotonic() - self._input_at < INTERACTIVE_FOR

    @property
    def focused(self) -> bool:
        return self._focused

    @focused.setter
    def focused(self, focused: bool) -> None:
        if focused == self._focused:
            return
        self._focused = focused
        if self.turns is not None:
            self.turns.focused += 1 if focused else -1
        left = self._input_at + INTERACTIVE_FOR - time.monotonic()
        self._tell_relay(math.inf if focused else max(left, 0.0))

    def reset_priority(self) -> None:
        """Its job is over: the next job on this PTY starts neither focused nor typed into."""
        was = self.interactive()
        if self._focused and self.turns is not None:
            self.turns.focused -= 1
        self._focused, self._input_at = False, -math.inf
        if was:
            self._tell_relay(0.0)

    def _typed(self) -> None:
        now = time.monotonic()
        self._input_at = now
        if self.turns is not None:
            self.turns.typed_until = max(self.turns.typed_until, now + INTERACTIVE_FOR)
        if not self._focused and self._told_until < now + INTERACTIVE_FOR / 2:
            self._tell_relay(INTERACTIVE_FOR)

    def _tell_relay(self, seconds: float) -> None:
        self._told_until = time.monotonic() + seconds
        relay = self._attached()
        if relay is not None:
            relay.prioritise(self.id, seconds)

    # -- output -------------------------------------------------------------------------
    def _end_marker(self) -> bytes:
        """What ends each job's output on this PTY (b"": only the end of file)."""
        return b""

    async def _read_loop(self) -> None:
        """Read the PTY through the relay's pipe (or directly) until it ends or is closed."""
        self._reader_done = anyio.Event()
        relay = self._relay
        fd = self._pipe if self._pipe is not None else self.master
        try:
            with anyio.CancelScope() as scope:
                self._reader_scope = scope
                while True:
                    await anyio.wait_readable(fd)
                    if self.turns is None or self.interactive() or not self.turns.contended():
                        eof = self._read_some(fd)
                    else:
                        async with self.turns.turn():
                            eof = self._read_some(fd, TURN_BUDGET)
                    if not eof:
                        continue
                    if fd == self.master or (relay is not None and await relay.ended(self.id)):
                        break
                    fd = self.master  # the relay died: read the PTY ourselves from here on
                    self._relay_lost()
                    lost, self._recordings = self._recordings, {}
                    for take_over in lost.values():
                        take_over()
        except (OSError, anyio.ClosedResourceError):
            pass  # the fd was closed under us: the terminal is going away
        finally:
            self._detach()
            self._eof.set()
            self._reader_done.set()

    def _read_some(self, fd: int, budget: int = READ_BUDGET) -> bool:
        """Read and deliver what is there (at most `budget`); True at end of file."""
        data, eof = read_available(fd, budget)
        if data:
            self._deliver(data)
        return eof

    def _relay_lost(self) -> None:  # noqa: B027  (a hook: only pooled terminals care)
        """The relay died: what it had read and not passed on is lost."""

    def _attached(self) -> PtyRelay | None:
        """The relay this PTY is attached to (it may have died since), or None."""
        return self._relay if self._pipe is not None else None

    def _detach(self) -> None:
        if self._pipe is not None:
            if self._relay is not None:
                self._relay.detach(self.id)
            os.close(self._pipe)
        self._pipe = None

    # -- recording ----------------------------------------------------------------------
    def record(
        self,
        path: Path,
        header: dict[str, object],
        on_lost: Callable[[], None],
        rotation: tuple[int, int] | None = None,
    ) -> bool:
        """Have the relay record this PTY's output from now on (asciicast v2 at `path`,
        until the job's end, rotated past `rotation`'s (max_size, keep)); False when there
        is no live relay: record it yourself. `on_lost` runs if the relay dies before
        `stop_recording(path)`."""
        relay = self._attached()
        if relay is None or not relay.record(self.id, path, header, rotation):
            return False
        self._recordings[path] = on_lost
        return True

    def record_resize(self, cols: int, rows: int) -> None:
        relay = self._attached()
        if relay is not None:
            relay.record_resize(self.id, cols, rows)

    def stop_recording(self, path: Path) -> None:
        self._recordings.pop(path, None)
        relay = self._attached()
        if relay is not None:
            relay.stop_recording(self.id, path)

    def discard_recording(self, path: Path) -> None:
        """The job to record at `path` never ran: leave no file."""
        self._recordings.pop(path, None)
        relay = self._attached()
        if relay is not None:
            relay.discard_recording(self.id, path)

    def _deliver(self, data: bytes) -> None:
        if self._sink is not None:
            self._sink(data)

    def answering(self) -> object:
        """Called from a sink: the job whose output is being delivered, if it may still
        read its input (answers to its terminal queries may be written), else None."""
        return self.job_pid

    def answer(self, data: bytes) -> None:
        """Answer the terminal queries in the output being delivered (called from a sink):
        bounded, and only into the input of the job that asked (engine/terminals/replies.py)."""
        job = self.answering()
        if job is None:
            self._replies.dropped += len(data)
        else:
            self._replies.offer(job, data, self._alive, self._tg)

    def _alive(self, job: object) -> bool:
        """Job `job` (what `answering` said) still runs here: its exit is not reported,
        its leader not dead yet (the exit report may still be on its way)."""
        return job == self.job_pid and procs.alive(self.job_pid)

    def reply_statistics(self) -> ReplyStatistics:
        return self._replies.statistics()

    # -- input, size, signals -----------------------------------------------------------
    async def write(self, data: bytes) -> None:
        """Write all of data to the program's input, waiting while the PTY buffer is full."""
        self._typed()
        async with self._write_lock:
            view = memoryview(data)
            while view:
                try:
                    view = view[os.write(self.master, view) :]
                except BlockingIOError:
                    await anyio.wait_writable(self.master)
                except OSError as exc:  # closed: its job is gone, or being given up
                    raise TerminalError(f"terminal #{self.id} is closed") from exc

    def resize(self, cols: int, rows: int) -> None:
        set_winsize(self.master, cols, rows)

    def waits_for_keys(self) -> bool:
        """Its foreground program sleeps waiting for input (engine/terminals/foreground.py)."""
        return not self._closed and self.master >= 0 and waits_for_keys(self.master)

    def process_session(self) -> int | None:
        """The session id of the running job's processes (None before a start)."""
        return self._session_id()

    @abstractmethod
    def _session_id(self) -> int | None:
        """The session id shared by every process of the job."""

    @property
    def session_id(self) -> int | None:
        """The id of the PTY's process session (every process of its jobs is in it)."""
        return self._session_id()

    async def wait(self) -> ExitStatus:
        """Wait for the running job's end and for every byte it printed."""
        ended = await self.wait_exit()
        await ended.drained()
        return ended.status

    @abstractmethod
    async def wait_exit(self, pid: int | None = None) -> Ended:
        """Wait for the end of job `pid` (default: the running one); `drained` then waits
        for the rest of its output (a pooled terminal may take its next job in between)."""

    @abstractmethod
    async def aclose(self) -> None:
        """Kill everything on this PTY and release its fds."""

    def _own_group(self) -> int | None:
        return None

    @property
    def reusable(self) -> bool:
        """False once closed, or once its output boundary could not be trusted."""
        return not self._closed

    def _job_groups(self, pid: int | None) -> list[int]:
        """Every process group of job `pid` (default: the running job), its own group
        first; none once that job has ended. A pooled terminal may already run the next
        job (a follower) before the engine has read the exit report: then its own group
        is gone, and the groups found are the next job's, which must not be touched."""
        job = self.job_pid if pid is None else pid
        sid = self._session_id()
        if sid is None or job is None or job != self.job_pid:
            return []
        groups = procs.session_groups(sid, exclude=self._own_group())
        if job not in groups:
            return []  # its leader is gone: the launcher kills what is left
        groups.remove(job)
        return [job, *groups]

    def signal_job(self, sig: int, pid: int | None = None) -> int:
        """Signal every process group of job `pid` (default: the running job); return
        the number of groups."""
        return procs.signal_groups(self._job_groups(pid), sig)

    async def pause_job(self, pid: int | None = None) -> None:
        """SIGSTOP the job's own group, and only once it has stopped, the other groups.

        A job-control shell (the job's leader) that saw one of its jobs stop would print
        "Stopped" and take the terminal back; stopped first, it never sees that.
        """
        groups = self._job_groups(pid)
        if groups:
            procs.signal_groups(groups[:1], signal.SIGSTOP)
            await procs.wait_group_state(groups[0], stopped=True)
            procs.signal_groups(groups[1:], signal.SIGSTOP)

    async def resume_job(self, pid: int | None = None) -> None:
        """SIGCONT in the reverse order: the leader wakes to find its jobs running."""
        groups = self._job_groups(pid)
        if groups:
            procs.signal_groups(groups[1:], signal.SIGCONT)
            for pgid in groups[1:]:
                await procs.wait_group_state(pgid, stopped=False)
            procs.signal_groups(groups[:1], signal.SIGCONT)

    # -- lifecycle ----------------------------------------------------------------------
    async def _close_fds(self) -> None:
        """Stop the reader first: an fd must leave the event loop before its number is reused."""
        if self._reader_scope is not None:
            self._reader_scope.cancel()
        if self._reader_done is not None:
            with anyio.CancelScope(shield=True):
                await self._reader_done.wait()
        await self._replies.aclose()
        self._detach()  # a terminal whose reader never started
        for fd in (self.master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master = self._slave = -1


def base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every terminal starts from: the engine's, with a sane TERM."""
    env = dict(os.environ)
    for var in ("COLUMNS", "LINES"):
        env.pop(var, None)
    env["TERM"] = TERM
    env["COLORTERM"] = "truecolor"
    env["PATH"] = _with_swarmdeck(env.get("PATH", os.defpath))
    if extra:
        env.update(extra)
    return env


def _with_swarmdeck(path: str) -> str:
    """Sessions reach the bus with `swarmdeck bus`: if PATH cannot find it (a venv not
    activated), append the engine's own bin directory, after the user's entries."""
    bindir = os.path.dirname(sys.executable)
    if shutil.which("swarmdeck", path=path) or not os.path.exists(f"{bindir}/swarmdeck"):
        return path
    return f"{path}{os.pathsep}{bindir}" if path else bindir
