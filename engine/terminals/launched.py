"""Jobs run by a launcher (engine/terminals/launcher.py), whatever carries its PTY's bytes:
a local PTY (pooled.py) or a PTY channel on a host (hosts/remote_pooled.py).

After each job the launcher writes an unguessable end marker through the PTY: the bytes
before it are that job's, those after it the next job's. `LauncherJobs` routes a PTY's
output by those markers (`_route`), keeps each job's `JobRun` on the `LauncherChannel`,
and offers the calls a session makes of a warm terminal (start, follow, the exit, the
last bytes). The terminal brings the bytes and says when its output has ended for good
(`_output_ended`); the launcher's reports move the terminal's state in the same step.

Size: one state machine (routing by marker, the hand-over to a follower, the drain) shared
by both kinds of warm terminal.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from typing import TYPE_CHECKING

import anyio

from engine.errors import SpawnError, TerminalError
from engine.terminals.channel import JobRun, LauncherChannel
from engine.terminals.relay_process import partial_suffix
from engine.terminals.terminal import Ended

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from engine.terminals.channel import ControlStream
    from engine.terminals.terminal import Job

FRESH_REPORT = 1.0  # seconds an exit report counts as a successful health check
BOUNDARY_TIMEOUT = 2.0  # seconds the marker may trail the exit report before it counts lost


def end_marker() -> bytes:
    """A new terminal's end-of-job marker (an OSC nothing else prints)."""
    return f"\x1b]6973;swarmdeck-end;{secrets.token_hex(8)}\x07".encode()


def init_script(init: str, then: str) -> str:
    """A shell script running the pool's `init` once, then `then` (which execs the
    launcher); a failing init ends it, saying so, with init's exit status."""
    if not init.strip():
        return then
    return (
        f"{init}\n__sd_rc=$?\n"
        'if [ "$__sd_rc" != 0 ]; then echo "swarmdeck: pool init failed'
        ' (exit $__sd_rc)" >&2; exit "$__sd_rc"; fi\n' + then
    )


class LauncherJobs:
    """A warm terminal's jobs on its launcher (mixed into a terminal class)."""

    # The terminal's own state, which the launcher's reports move (set by the terminal).
    _closed: bool
    job_pid: int | None
    job_started_at: float | None
    idle_since: float
    leases: int
    _marker: bytes

    def _init_jobs(self, control: ControlStream) -> None:
        self._pending = b""
        self._outputs: deque[JobRun] = deque()  # oldest first: the one receiving bytes
        self._delivering: JobRun | None = None  # whose bytes a sink is handling now
        self._channel = LauncherChannel(control, self._started, self._exited, self._dropped)

    # -- hooks ----------------------------------------------------------------------------
    def _output_ended(self) -> bool:
        """The PTY's output has ended: no marker can come any more."""
        raise NotImplementedError

    def _leader_alive(self, pid: int) -> bool:
        """Job `pid`'s leader is not dead yet (True when that cannot be seen from here)."""
        return True

    if TYPE_CHECKING:  # the terminal's own

        def resize(self, cols: int, rows: int) -> None: ...

        async def aclose(self) -> None: ...

        def _failure(self, exc: BaseException) -> str: ...

    async def _until_ready(
        self,
        timeout: float,
        last_words: anyio.Event,
        connect: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`connect` (if any), then wait until the launcher says ready. If it does not,
        close the terminal and raise SpawnError saying why (`_failure`), once its shell's
        last words are in (`last_words`: its output ended) or half a second has passed."""
        try:
            if connect is not None:
                await connect()
            with anyio.fail_after(timeout):
                await self._channel.ready.wait()
            self._channel.check()
        except (TimeoutError, TerminalError) as exc:
            with anyio.move_on_after(0.5):
                await last_words.wait()
            await self.aclose()
            raise SpawnError(self._failure(exc)) from exc
        except BaseException:
            await self.aclose()
            raise

    # -- output ---------------------------------------------------------------------------
    def _route(self, data: bytes) -> None:
        """Give each part of the PTY's bytes to the job it is from, by end marker."""
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
        return job.pid is None or self._leader_alive(job.pid)

    def _relay_lost(self) -> None:
        for run in self._outputs:  # their markers may have been among the bytes lost
            run.at_risk = True

    # -- the launcher's reports (engine/terminals/channel.py) -----------------------------
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
            await self._lost_launcher()
        assert run.status is not None
        assert run.ended_at is not None
        assert run.pid is not None
        by_pid.pop(run.pid, None)
        return Ended(run.status, lambda: self._drain(run), run.ended_at)

    async def _lost_launcher(self) -> None:
        """The launcher went away before the job's end was reported: say why (raises)."""
        self._channel.check()

    async def _drain(self, run: JobRun) -> None:
        """Wait for the job's end marker. The stream loses bytes only when the relay dies
        (what it had read but not passed on): a marker can then be lost, and after
        BOUNDARY_TIMEOUT what follows goes to the next job. Otherwise the marker comes,
        however long a flood takes to digest, unless the PTY's output ended first."""
        while not run.output_done.is_set():
            with anyio.move_on_after(BOUNDARY_TIMEOUT):
                await run.output_done.wait()
            if not run.output_done.is_set() and (run.at_risk or self._output_ended()):
                break
        else:
            return
        self._closed = True  # output boundary lost: never reuse this terminal
        if run in self._outputs:  # what follows is the next job's, if there is one
            self._outputs.remove(run)

    async def _launcher_answers(self, timeout: float) -> bool:
        """The launcher answers a ping with its tty clean (a job's exit report in the
        last FRESH_REPORT seconds counts as one)."""
        if self._channel.failure is not None:
            return False
        if self.leases and time.monotonic() - self.idle_since < FRESH_REPORT:
            return True
        try:
            self._channel.ping()
            with anyio.fail_after(timeout):
                await self._channel.pong.wait()
            return self._channel.failure is None and self._channel.clean
        except (TimeoutError, TerminalError):
            return False

    async def abandon(self) -> None:
        """Its launcher did not report a killed job's end: kill everything on it now (how
        the job ended is lost) and never reuse it; whoever waits for the job is woken."""
        self._closed = True
        await self.aclose()

    @property
    def reusable(self) -> bool:
        return not self._closed and self._channel.failure is None
