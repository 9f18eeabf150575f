"""The engine's side of a launcher's control socket (engine/terminals/launcher.py): requests out,
events in, and what became of each job sent to it (`JobRun`).

The channel speaks over a `ControlStream`: a local launcher's socketpair end
(`SocketControl`), or, for a launcher on a host, a stream over the SSH connection
(engine/terminals/hosts/remote_launcher.py). One task reads the launcher's events in
order and settles each JobRun: started, exited, or dropped (a follower that never ran).
The terminal that owns the channel hears of each through callbacks, so its own state (the
running job's pid, the output queue) moves in the same step as the event, before any task
waiting on the JobRun resumes.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from engine.errors import TerminalError
from engine.terminals.socket_io import receive
from engine.terminals.terminal import ExitStatus

if TYPE_CHECKING:
    import socket
    from collections.abc import Callable

    from engine.terminals.terminal import Job


class JobPhase(StrEnum):
    """Where a job sent to a launcher is. A follower waits in SENT for its predecessor's
    exit; `next` in that exit report moves it to TAKING_OVER, its start to STARTED."""

    SENT = "sent"
    TAKING_OVER = "taking-over"  # its predecessor exited 0 and started it: "started" next
    STARTED = "started"
    DROPPED = "dropped"  # it never ran (a follower dropped, or sent too late)


JOB_TRANSITIONS: dict[JobPhase, frozenset[JobPhase]] = {
    JobPhase.SENT: frozenset({JobPhase.TAKING_OVER, JobPhase.STARTED, JobPhase.DROPPED}),
    JobPhase.TAKING_OVER: frozenset({JobPhase.STARTED, JobPhase.DROPPED}),
    JobPhase.STARTED: frozenset(),
    JobPhase.DROPPED: frozenset(),
}


@dataclass(eq=False)
class JobRun:
    """One job's course on a terminal, as its launcher reports it. `phase` moves only by
    `advance`, along JOB_TRANSITIONS, and only the channel's event reader calls it."""

    id: int
    sink: Callable[[bytes], None]
    phase: JobPhase = JobPhase.SENT
    fate: anyio.Event = field(default_factory=anyio.Event)  # started or dropped (or lost)
    exited: anyio.Event = field(default_factory=anyio.Event)
    output_done: anyio.Event = field(default_factory=anyio.Event)  # its end marker came
    pid: int | None = None
    started_at: float | None = None
    at_risk: bool = False  # the relay died before its end marker came through
    status: ExitStatus | None = None
    restored: bool = True  # the launcher put the tty back and wrote the end marker
    ended_at: float | None = None
    on_drop: Callable[[], None] | None = None  # a follower that will never run

    def advance(self, phase: JobPhase) -> None:
        if phase not in JOB_TRANSITIONS[self.phase]:
            raise TerminalError(f"job {self.id}: cannot go from {self.phase} to {phase}")
        self.phase = phase
        if phase in (JobPhase.STARTED, JobPhase.DROPPED):
            self.fate.set()

    @property
    def dropped(self) -> bool:
        return self.phase is JobPhase.DROPPED

    @property
    def taking_over(self) -> bool:
        return self.phase is JobPhase.TAKING_OVER


class ControlStream(Protocol):
    """Bytes to and from a launcher: `send` never waits (the launcher reads promptly),
    `receive` returns b"" at the end; both raise OSError when the stream fails."""

    def send(self, data: bytes) -> None: ...

    async def receive(self) -> bytes: ...

    def close(self) -> None: ...


class SocketControl:
    """A local launcher's end of its socketpair, read from the event loop."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    async def receive(self) -> bytes:
        return await receive(self.sock)

    def close(self) -> None:
        self.sock.close()


class LauncherChannel:
    """Requests to one launcher and its events; `read` must run for events to arrive."""

    def __init__(
        self,
        sock: ControlStream,
        on_started: Callable[[JobRun], None],
        on_exited: Callable[[JobRun], None],
        on_dropped: Callable[[JobRun], None],
    ) -> None:
        self.sock = sock
        self._on_started, self._on_exited, self._on_dropped = on_started, on_exited, on_dropped
        self.jobs: dict[int, JobRun] = {}  # sent, not yet exited (or dropped)
        self.by_pid: dict[int, JobRun] = {}  # started, exit not yet collected
        self.current: JobRun | None = None  # running now
        self.follower: JobRun | None = None  # sent to follow it, fate unknown
        self.handovers: set[int] = set()  # jobs whose exit started their follower at once
        self.failure: str | None = None
        self.launcher_pid: int | None = None
        self.ready = anyio.Event()
        self.pong = anyio.Event()
        self.clean = True  # the last pong: the tty is as the launcher's restore left it
        self._ids = itertools.count(1)
        self._scope: anyio.CancelScope | None = None
        self._done = anyio.Event()

    # -- requests -------------------------------------------------------------------------
    def check(self) -> None:
        if self.failure is not None:
            raise TerminalError(self.failure)

    def send(self, msg: dict[str, object]) -> None:
        self.check()
        try:
            self.sock.send(json.dumps(msg).encode() + b"\n")
        except OSError as exc:
            raise TerminalError(f"launcher channel failed: {exc}") from exc

    def new_run(self, sink: Callable[[bytes], None]) -> JobRun:
        run = JobRun(next(self._ids), sink)
        self.jobs[run.id] = run
        return run

    def run(self, run: JobRun, job: Job) -> None:
        self.send({"op": "run", "id": run.id, **_request(job)})

    def follow(self, run: JobRun, job: Job, after: int) -> None:
        """Send `job` to start the moment job `after` exits 0."""
        current = self.current
        if current is None or current.pid != after or self.follower is not None:
            raise TerminalError(f"job {after} is not running here without a follower")
        request = {"op": "next", "id": run.id, "cols": job.cols, "rows": job.rows}
        self.send({**request, **_request(job)})
        self.follower = run

    def drop_follower(self, run: JobRun | None) -> None:
        """Ask the launcher to forget the follower (its fate says if it was too late)."""
        if run is not None and not run.fate.is_set() and self.follower is run:
            try:
                self.send({"op": "drop", "id": run.id})
            except TerminalError:
                self._drop(run)

    def take_handover(self, pid: int) -> bool:
        """True (once) when job `pid`'s exit started its follower."""
        if pid not in self.handovers:
            return False
        self.handovers.discard(pid)
        return True

    def ping(self) -> None:
        self.pong = anyio.Event()
        self.send({"op": "ping"})

    def forget(self, run: JobRun) -> None:
        self.jobs.pop(run.id, None)

    # -- events ---------------------------------------------------------------------------
    async def read(self) -> None:
        """Read the launcher's events until its channel ends; then wake every waiter."""
        try:
            with anyio.CancelScope() as self._scope:
                await self._read_events()
        finally:
            self.failure = self.failure or "launcher exited"
            for event in (self.ready, self.pong):
                event.set()
            for run in list(self.jobs.values()):
                run.fate.set()
                run.exited.set()
            self._done.set()

    async def aclose(self) -> None:
        """Stop reading, then close the socket: it must leave the event loop first."""
        if self._scope is not None:
            self._scope.cancel()
            with anyio.CancelScope(shield=True):
                await self._done.wait()
        self.sock.close()

    async def _read_events(self) -> None:
        buf = b""
        try:
            while data := await self.sock.receive():
                *lines, buf = (buf + data).split(b"\n")
                for line in lines:
                    self._on_event(json.loads(line))
        except (OSError, anyio.ClosedResourceError, ValueError) as exc:
            self.failure = f"launcher channel failed: {exc}"

    def _on_event(self, msg: dict[str, Any]) -> None:
        ev = msg["ev"]
        if ev == "started":
            run = self.jobs.get(msg["id"])
            if run is None:
                return
            run.pid, run.started_at = int(msg["pid"]), float(msg["at"])
            self.current = run
            self.by_pid[run.pid] = run
            self._on_started(run)
            run.advance(JobPhase.STARTED)
        elif ev == "exited":
            self._on_exit(msg)
        elif ev == "dropped":
            dropped = self.jobs.get(msg["id"])
            if dropped is not None:
                self._drop(dropped)
        elif ev == "pong":
            self.clean = bool(msg.get("clean", True))
            self.pong.set()
        elif ev == "ready":
            self.launcher_pid = int(msg["pid"])
            self.ready.set()

    def _on_exit(self, msg: dict[str, Any]) -> None:
        run = self.jobs.pop(msg["id"], None)
        if run is None:
            return
        sig = msg.get("signal")
        run.status = ExitStatus(
            None if sig is not None else int(msg["code"]),
            int(sig) if sig is not None else None,
        )
        run.ended_at = float(msg["at"])
        run.restored = bool(msg.get("restored", True))
        self.current = None
        self._on_exited(run)
        follower, self.follower = self.follower, None
        if follower is not None and msg.get("next") == follower.id:
            follower.advance(JobPhase.TAKING_OVER)  # its "started" comes next
            if run.pid is not None:
                self.handovers.add(run.pid)
        elif follower is not None:  # dropped after a failure, or it came too late
            self._drop(follower)
        run.exited.set()

    def _drop(self, run: JobRun) -> None:
        self.jobs.pop(run.id, None)
        if self.follower is run:
            self.follower = None
        run.advance(JobPhase.DROPPED)
        self._on_dropped(run)
        if run.on_drop is not None:  # at once: before the terminal can take another job
            run.on_drop()
        run.fate.set()


def _request(job: Job) -> dict[str, object]:
    request: dict[str, object] = {"argv": job.argv, "env": job.env, "cwd": job.cwd}
    if job.path_first:
        request["path_first"] = job.path_first
    return request
