"""A terminal: one PTY, the process on it, and the event-loop-driven reader of its output.

Two kinds share the read loop:

* `PooledTerminal` keeps a launcher (engine/launcher.py) as the PTY's session leader and
  runs one job after another on it; a job's end is reported on a control socket and the
  output boundary is an unguessable marker the launcher writes through the PTY, so every
  byte is attributed to the right session.
* `FreshTerminal` runs one job as the PTY's session leader and is closed afterwards.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import secrets
import signal
import socket
import sys
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio

from engine import procs
from engine.errors import SpawnError, TerminalError
from engine.pty import open_pty, read_available, set_winsize, spawn_on_pty

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable, Mapping

    from anyio.abc import TaskGroup

FRESH_REPORT = 1.0  # seconds an exit report counts as a successful health check
READ_BUDGET = 64 * 1024  # bytes per wake-up: large reads, yet fair to other terminals
LAUNCHER = str(Path(__file__).with_name("launcher.py"))
_ids = itertools.count(1)


@dataclass(frozen=True)
class ExitStatus:
    """How a job ended: an exit code, or the signal that killed it."""

    code: int | None
    signal: int | None = None

    @property
    def ok(self) -> bool:
        return self.code == 0

    def describe(self) -> str:
        if self.signal is not None:
            return f"killed by {signal.Signals(self.signal).name}"
        return f"exit {self.code}"

    @classmethod
    def from_returncode(cls, rc: int) -> ExitStatus:
        return cls(None, -rc) if rc < 0 else cls(rc)


@dataclass(frozen=True)
class Job:
    """One command to run on a terminal."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    cols: int = 80
    rows: int = 24


class Terminal(ABC):
    """Shared PTY plumbing: the non-blocking read loop, input, resize, signals."""

    kind: Literal["pooled", "fresh"]

    def __init__(self, cols: int, rows: int) -> None:
        self.id = next(_ids)
        self.master, self._slave = open_pty(cols, rows)
        self.leases = 0
        self.created_at = time.monotonic()
        self.idle_since = self.created_at
        self.job_pid: int | None = None
        self._sink: Callable[[bytes], None] | None = None
        self._eof = anyio.Event()
        self._write_lock = anyio.Lock()
        self._reader_scope: anyio.CancelScope | None = None
        self._reader_done: anyio.Event | None = None
        self._closed = False

    # -- output -------------------------------------------------------------------------
    async def _read_loop(self) -> None:
        self._reader_done = anyio.Event()
        try:
            with anyio.CancelScope() as scope:
                self._reader_scope = scope
                while True:
                    await anyio.wait_readable(self.master)
                    data, eof = read_available(self.master, READ_BUDGET)
                    if data:
                        self._deliver(data)
                    if eof:
                        break
        except (OSError, anyio.ClosedResourceError):
            pass  # the fd was closed under us: the terminal is going away
        finally:
            self._eof.set()
            self._reader_done.set()

    def _deliver(self, data: bytes) -> None:
        if self._sink is not None:
            self._sink(data)

    # -- input, size, signals -----------------------------------------------------------
    async def write(self, data: bytes) -> None:
        """Write all of data to the program's input, waiting while the PTY buffer is full."""
        async with self._write_lock:
            view = memoryview(data)
            while view:
                try:
                    view = view[os.write(self.master, view) :]
                except BlockingIOError:
                    await anyio.wait_writable(self.master)

    def resize(self, cols: int, rows: int) -> None:
        set_winsize(self.master, cols, rows)

    @abstractmethod
    def _session_id(self) -> int | None:
        """The session id shared by every process of the job."""

    @abstractmethod
    async def wait(self) -> ExitStatus:
        """Wait for the running job's end and for every byte it printed."""

    @abstractmethod
    async def aclose(self) -> None:
        """Kill everything on this PTY and release its fds."""

    def _own_group(self) -> int | None:
        return None

    def _job_groups(self) -> list[int]:
        """Every process group of the running job, the job's own group first."""
        sid = self._session_id()
        if sid is None or self.job_pid is None:
            return []
        groups = procs.session_groups(sid, exclude=self._own_group())
        if self.job_pid in groups:
            groups.remove(self.job_pid)
            groups.insert(0, self.job_pid)
        return groups

    def signal_job(self, sig: int) -> int:
        """Signal every process group of the running job; return the number of groups."""
        return procs.signal_groups(self._job_groups(), sig)

    async def pause_job(self) -> None:
        """SIGSTOP the job's own group, and only once it has stopped, the other groups.

        A job-control shell (the job's leader) that saw one of its jobs stop would print
        "Stopped" and take the terminal back; stopped first, it never sees that.
        """
        groups = self._job_groups()
        if groups:
            procs.signal_groups(groups[:1], signal.SIGSTOP)
            await procs.wait_group_state(groups[0], stopped=True)
            procs.signal_groups(groups[1:], signal.SIGSTOP)

    async def resume_job(self) -> None:
        """SIGCONT in the reverse order: the leader wakes to find its jobs running."""
        groups = self._job_groups()
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
        for fd in (self.master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master = self._slave = -1


async def _reap(popen: subprocess.Popen[bytes], timeout: float) -> int | None:
    """Wait for a child through its pidfd (no thread, no SIGCHLD handler)."""
    if popen.returncode is not None:
        return popen.returncode
    try:
        pidfd = os.pidfd_open(popen.pid)
    except ProcessLookupError:
        return popen.poll()
    try:
        with anyio.move_on_after(timeout):
            while popen.poll() is None:
                await anyio.wait_readable(pidfd)
    finally:
        os.close(pidfd)
    return popen.returncode


async def _kill_session(sid: int, popen: subprocess.Popen[bytes]) -> None:
    procs.signal_groups(procs.session_groups(sid), signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(popen.pid, signal.SIGKILL)
    await _reap(popen, 5.0)


def base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every terminal starts from: the engine's, with a sane TERM."""
    env = dict(os.environ)
    for var in ("COLUMNS", "LINES"):
        env.pop(var, None)
    env["TERM"] = "xterm-256color"
    env["COLORTERM"] = "truecolor"
    if extra:
        env.update(extra)
    return env


class PooledTerminal(Terminal):
    """A warm PTY: shell init done once, then any number of jobs, one at a time."""

    kind: Literal["pooled", "fresh"] = "pooled"

    def __init__(self, cols: int, rows: int) -> None:
        super().__init__(cols, rows)
        self._marker = f"\x1b]6973;swarmdeck-end;{secrets.token_hex(8)}\x07".encode()
        self._pending = b""
        self._boundary = anyio.Event()
        self._ctl, self._child_ctl = socket.socketpair()
        self._ctl.setblocking(False)
        self._buf = b""
        self._popen: subprocess.Popen[bytes] | None = None
        self.launcher_pid: int | None = None

    async def open(self, tg: TaskGroup, shell: str, init: str, timeout: float = 30.0) -> None:
        """Start the shell, run init, exec the launcher and wait until it says ready."""
        script = "exec " + " ".join(
            _quote(a) for a in (sys.executable, "-I", "-S", LAUNCHER, str(self._child_ctl.fileno()))
        )
        script += " " + _quote(self._marker.decode())
        if init.strip():
            script = (
                f"{init}\n__sd_rc=$?\n"
                'if [ "$__sd_rc" != 0 ]; then echo "swarmdeck: pool init failed'
                ' (exit $__sd_rc)" >&2; exit "$__sd_rc"; fi\n' + script
            )
        self._sink = self._collect_init_output
        self._init_output = bytearray()
        tg.start_soon(self._read_loop)
        self._popen = spawn_on_pty(
            [shell, "-c", script], self._slave, env=base_env(), pass_fds=[self._child_ctl.fileno()]
        )
        self._child_ctl.close()
        os.close(self._slave)
        self._slave = -1
        try:
            with anyio.fail_after(timeout):
                msg = await self._recv()
        except (TimeoutError, TerminalError) as exc:
            await self.aclose()
            raise SpawnError(self._failure(exc)) from exc
        except BaseException:
            await self.aclose()
            raise
        self.launcher_pid = int(msg["pid"])
        self._sink = None

    def _failure(self, exc: BaseException) -> str:
        why = "no answer (timeout)" if isinstance(exc, TimeoutError) else str(exc)
        rc = self._popen.returncode if self._popen is not None else None
        if rc is not None and rc != -signal.SIGKILL:
            why = f"shell {ExitStatus.from_returncode(rc).describe()}"
        out = self._init_output.decode(errors="replace").strip()
        detail = f"; it printed: {out[-500:]}" if out else ""
        return f"pooled terminal did not start: pool init failed ({why}){detail}"

    def _collect_init_output(self, data: bytes) -> None:
        self._init_output += data[-4096:]

    def _deliver(self, data: bytes) -> None:
        data = self._pending + data
        self._pending = b""
        at = data.find(self._marker)
        if at >= 0:
            if self._sink is not None and at:
                self._sink(data[:at])
            self._boundary.set()
            return
        keep = _partial_suffix(data, self._marker)
        if keep:
            self._pending = data[-keep:]
            data = data[:-keep]
        if self._sink is not None and data:
            self._sink(data)

    async def _recv(self) -> dict[str, Any]:
        while b"\n" not in self._buf:
            await anyio.wait_readable(self._ctl)
            try:
                data = self._ctl.recv(65536)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise TerminalError(f"launcher channel failed: {exc}") from exc
            if not data:
                raise TerminalError("launcher exited")
            self._buf += data
        line, self._buf = self._buf.split(b"\n", 1)
        msg: dict[str, Any] = json.loads(line)
        return msg

    def _send(self, msg: dict[str, object]) -> None:
        try:
            self._ctl.sendall(json.dumps(msg).encode() + b"\n")
        except OSError as exc:
            raise TerminalError(f"launcher channel failed: {exc}") from exc

    async def start(self, job: Job, sink: Callable[[bytes], None]) -> int:
        """Dispatch a job; return its pid (also its process group id)."""
        self.resize(job.cols, job.rows)
        self._boundary = anyio.Event()
        self._sink = sink
        self._send({"op": "run", "argv": job.argv, "env": job.env, "cwd": job.cwd})
        msg = await self._recv()
        self.job_pid = int(msg["pid"])
        self.leases += 1
        return self.job_pid

    async def wait(self) -> ExitStatus:
        """Wait for the job's end and for every byte it printed."""
        msg = await self._recv()  # cancellable: the job stays known until it has ended
        self.job_pid = None
        with anyio.move_on_after(2.0):
            await self._boundary.wait()
        if not self._boundary.is_set():
            self._closed = True  # output boundary lost: never reuse this terminal
        self._sink = None
        self.idle_since = time.monotonic()
        sig = msg.get("signal")
        return ExitStatus(
            None if sig is not None else int(msg["code"]),
            int(sig) if sig is not None else None,
        )

    async def check_health(self, timeout: float = 2.0) -> bool:
        """Alive, with its output boundary intact, and answering a ping."""
        if self._closed or self._eof.is_set() or self._popen is None:
            return False
        if self._popen.poll() is not None:
            return False
        if self.leases and time.monotonic() - self.idle_since < FRESH_REPORT:
            return True  # its last job's exit report just proved the launcher answers
        try:
            self._send({"op": "ping"})
            with anyio.fail_after(timeout):
                return (await self._recv()).get("ev") == "pong"
        except (TimeoutError, TerminalError):
            return False

    def _session_id(self) -> int | None:
        return self.launcher_pid

    def _own_group(self) -> int | None:
        return self.launcher_pid

    async def aclose(self) -> None:
        """Kill the launcher and everything on this PTY, then release the fds."""
        self._closed = True
        self._ctl.close()
        if self._popen is not None:
            with anyio.CancelScope(shield=True):
                if self.launcher_pid is None:  # failed start: learn how the shell ended
                    await _reap(self._popen, 0.2)
                await _kill_session(self._popen.pid, self._popen)
        await self._close_fds()
        if self._child_ctl.fileno() >= 0:
            self._child_ctl.close()


class FreshTerminal(Terminal):
    """A PTY made for one job; the job is its session leader."""

    kind: Literal["pooled", "fresh"] = "fresh"

    def __init__(self, cols: int, rows: int) -> None:
        super().__init__(cols, rows)
        self._popen: subprocess.Popen[bytes] | None = None

    async def start(
        self, job: Job, sink: Callable[[bytes], None], tg: TaskGroup, env: Mapping[str, str]
    ) -> int:
        self._sink = sink
        tg.start_soon(self._read_loop)
        self._popen = spawn_on_pty(job.argv, self._slave, env={**env, **job.env}, cwd=job.cwd)
        os.close(self._slave)
        self._slave = -1
        self.job_pid = self._popen.pid
        self.leases = 1
        return self.job_pid

    async def wait(self) -> ExitStatus:
        assert self._popen is not None
        rc = await _reap(self._popen, float("inf"))
        assert rc is not None
        procs.signal_groups(procs.session_groups(self._popen.pid), signal.SIGKILL)
        with anyio.move_on_after(2.0):
            await self._eof.wait()
        self.job_pid = None
        self._sink = None
        return ExitStatus.from_returncode(rc)

    def _session_id(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    async def aclose(self) -> None:
        self._closed = True
        if self._popen is not None:
            with anyio.CancelScope(shield=True):
                await _kill_session(self._popen.pid, self._popen)
        await self._close_fds()


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


def _partial_suffix(data: bytes, marker: bytes) -> int:
    """Length of the longest suffix of data that is a proper prefix of marker."""
    start = data.rfind(marker[:1], max(0, len(data) - len(marker) + 1))
    if start < 0:
        return 0
    return len(data) - start if marker.startswith(data[start:]) else 0
