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
import secrets
import signal
import socket
import sys
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

import anyio

from engine.errors import SpawnError, TerminalError
from engine.terminals import procs
from engine.terminals.channel import JobRun, LauncherChannel, SocketControl
from engine.terminals.procs import kill_session
from engine.terminals.relay_process import partial_suffix
from engine.terminals.terminal import Ended, ExitStatus, Job, Terminal, base_env
from engine.terminals.warden import spawn_session

if TYPE_CHECKING:
    from collections.abc import Callable

    from anyio.abc import TaskGroup

    from engine.terminals.relay import PtyRelay
    from engine.terminals.warden import SessionProcess, Warden

FRESH_REPORT = 1.0  # seconds an exit report counts as a successful health check
BOUNDARY_TIMEOUT = 2.0  # seconds the marker may trail the exit report before it counts lost
REPORT_GRACE = 8.0  # seconds after SIGKILL the exit report may take (its restore: <= 5)
LAUNCHER = str(Path(__file__).with_name("launcher.py"))


class Follow(NamedTuple):
    """Where a follower waits: the terminal, and the pid of the job it follows."""

    terminal: PooledTerminal
    pid: int


class PooledTerminal(Terminal):
    """A warm PTY: shell init done once, then any number of jobs, one at a time."""

    kind: Literal["pooled", "fresh"] = "pooled"

    def __init__(
        self, cols: int, rows: int, relay: PtyRelay | None = None, warden: Warden | None = None
    ) -> None:
        self._marker = f"\x1b]6973;swarmdeck-end;{secrets.token_hex(8)}\x07".encode()
        super().__init__(cols, rows, relay, warden)
        self._pending = b""
        self._outputs: deque[JobRun] = deque()  # oldest first: the one receiving bytes
        self._delivering: JobRun | None = None  # whose bytes a sink is handling now
        ctl, self._child_ctl = socket.socketpair()
        ctl.setblocking(False)
        control = SocketControl(ctl)
        self._channel = LauncherChannel(control, self._started, self._exited, self._dropped)
        self._popen: SessionProcess | None = None

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
        try:
            with anyio.fail_after(timeout):
                await self._channel.ready.wait()
            self._channel.check()
        except (TimeoutError, TerminalError) as exc:
            with anyio.move_on_after(0.5):  # the shell's last words, to say why it failed
                await self._eof.wait()
            await self.aclose()
            raise SpawnError(self._failure(exc)) from exc
        except BaseException:
            await self.aclose()
            raise
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
            return
        data = self._pending + data
        self._pending = b""
        while self._outputs:
            at = data.find(self._marker)
            if at < 0:
                break
            run = self._outputs.popleft()
            run.output_done.set()  # before its last bytes: the job has ended, answer none
            if at:
                self._sink_into(run, data[:at])
            data = data[at + len(self._marker) :]
        if not self._outputs:
            return  # nothing runs: between jobs the launcher writes nothing
        keep = partial_suffix(data, self._marker)
        if keep:
            self._pending = data[-keep:]
            data = data[:-keep]
        if data:
            self._sink_into(self._outputs[0], data)

    def _sink_into(self, run: JobRun, data: bytes) -> None:
        self._delivering = run
        try:
            run.sink(data)
        finally:
            self._delivering = None

    def answering(self) -> object:
        """Called from a sink: the job those bytes are from (its JobRun), unless its end
        was reported or its end marker seen (the terminal's input is then the next job's)."""
        run = self._delivering
        return run if run is not None and self._alive(run) else None

    def _alive(self, job: object) -> bool:
        """Not reported ended, no end marker seen, and (once its pid is known) its leader
        not dead yet: the exit report and the marker may still be on their way."""
        if not isinstance(job, JobRun) or job.status is not None or job.output_done.is_set():
            return False
        return job.pid is None or procs.alive(job.pid)

    # -- the launcher's reports (engine/terminals/channel.py) ---------------------------
    @property
    def launcher_pid(self) -> int | None:
        return self._channel.launcher_pid

    def _started(self, run: JobRun) -> None:
        self.job_pid = run.pid

    def _exited(self, run: JobRun) -> None:
        self.job_pid = None
        self.idle_since = time.monotonic()
        if not run.restored:  # never reuse it; its end marker may never come
            self._closed = True
            run.at_risk = True

    def _dropped(self, run: JobRun) -> None:
        if run in self._outputs:
            self._outputs.remove(run)

    def _new_run(self, sink: Callable[[bytes], None]) -> JobRun:
        run = self._channel.new_run(sink)
        self._outputs.append(run)
        return run

    def _forget(self, run: JobRun) -> None:
        self._channel.forget(run)
        if run in self._outputs:
            self._outputs.remove(run)

    # -- jobs -----------------------------------------------------------------------------
    async def start(self, job: Job, sink: Callable[[bytes], None]) -> int:
        """Dispatch a job; return its pid (also its process group id)."""
        self.resize(job.cols, job.rows)
        run = self._new_run(sink)
        try:
            self._channel.run(run, job)
        except TerminalError:
            self._forget(run)
            raise
        await run.fate.wait()  # if cancelled, the job stays known: it may have started
        self._channel.check()
        assert run.pid is not None
        self.job_started_at = run.started_at
        self.leases += 1
        return run.pid

    def follow(
        self, job: Job, sink: Callable[[bytes], None], on_drop: Callable[[], None], after: int
    ) -> JobRun:
        """Have the launcher start `job` the moment job `after` exits 0 (else drop it).
        Await `follower_started` for its fate; `on_drop` runs if it is dropped, before the
        terminal can serve anyone else (its recording must be given up first)."""
        run = self._new_run(sink)
        run.on_drop = on_drop
        try:
            self._channel.follow(run, job, after)
        except TerminalError:
            self._forget(run)
            raise
        return run

    async def follower_started(self, run: JobRun) -> int | None:
        """The follower's pid once it started; None if it was dropped (never ran)."""
        await run.fate.wait()
        if run.dropped:
            return None
        self._channel.check()
        assert run.pid is not None
        self.job_started_at = run.started_at
        self.leases += 1
        return run.pid

    def drop_follower(self, run: JobRun) -> None:
        """Ask the launcher to forget the follower; `follower_started` says if it was late."""
        self._channel.drop_follower(run)

    def take_handover(self, pid: int) -> bool:
        """True (once) when job `pid`'s exit started its follower: the lease goes on."""
        return self._channel.take_handover(pid)

    def drop_next(self) -> None:
        """The running job is being stopped: it gets no follower (drop the one it has)."""
        self._channel.drop_follower(self._channel.follower)

    @property
    def followable(self) -> bool:
        """Running a job that has no follower yet."""
        channel = self._channel
        return channel.current is not None and channel.follower is None and not self._closed

    async def wait_exit(self, pid: int | None = None) -> Ended:
        """Wait for the exit report of the job `pid` (default: the running one); the
        terminal can take its next job from then on. `drained` waits for its last bytes."""
        by_pid = self._channel.by_pid
        if pid is None:  # the running job, or the last one if it has ended already
            run = self._channel.current or next(reversed(by_pid.values()), None)
        else:
            run = by_pid.get(pid)
        if run is None:
            raise TerminalError("no such job on this terminal")
        await run.exited.wait()  # cancellable: the job stays known until it has ended
        if run.status is None:
            self._channel.check()  # the launcher went away
        assert run.status is not None
        assert run.ended_at is not None
        assert run.pid is not None
        by_pid.pop(run.pid, None)
        return Ended(run.status, lambda: self._drain(run), run.ended_at)

    async def _drain(self, run: JobRun) -> None:
        """Wait for the job's end marker. The stream loses bytes only when the relay dies
        (what it had read but not passed on): a marker can then be lost, and after
        BOUNDARY_TIMEOUT what follows goes to the next job. Otherwise the marker comes,
        however long a flood takes to digest, unless the PTY ended first."""
        while not run.output_done.is_set():
            with anyio.move_on_after(BOUNDARY_TIMEOUT):
                await run.output_done.wait()
            if not run.output_done.is_set() and (run.at_risk or self._eof.is_set()):
                break
        else:
            return
        self._closed = True  # output boundary lost: never reuse this terminal
        if run in self._outputs:  # what follows is the next job's, if there is one
            self._outputs.remove(run)

    def _relay_lost(self) -> None:
        for run in self._outputs:  # their markers may have been among the bytes lost
            run.at_risk = True

    async def check_health(self, timeout: float = 2.0) -> bool:
        """Alive, with its output boundary intact, and answering a ping."""
        if self._closed or self._eof.is_set() or self._popen is None:
            return False
        if self._popen.poll() is not None or self._channel.failure is not None:
            return False
        if self.leases and time.monotonic() - self.idle_since < FRESH_REPORT:
            return True  # its last job's exit report just proved the launcher answers
        try:
            self._channel.ping()
            with anyio.fail_after(timeout):
                await self._channel.pong.wait()
            return self._channel.failure is None and self._channel.clean
        except (TimeoutError, TerminalError):
            return False

    def _session_id(self) -> int | None:
        return self.launcher_pid

    def _own_group(self) -> int | None:
        return self.launcher_pid

    async def abandon(self) -> None:
        """Its launcher did not report a killed job's end: kill everything on it now (how
        the job ended is lost) and never reuse it; whoever waits for the job is woken."""
        self._closed = True
        await self.aclose()

    @property
    def reusable(self) -> bool:
        return not self._closed and self._channel.failure is None

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
