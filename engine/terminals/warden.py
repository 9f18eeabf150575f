"""The engine's side of the warden (terminals/warden_process.py): every session process is
started through it, so every one is contained.

Containment, chosen for what works here and in CI (root in a container, no systemd, a
hybrid cgroup mount that may be read-only elsewhere): a child subreaper that outlives the
engine. The warden is the parent of every terminal's first process (a pooled terminal's
shell and launcher, a fresh terminal's job); whatever those leave behind is re-parented
to it, and when the engine's end closes its control socket, even by SIGKILL, it kills
them all. cgroups would need a writable cgroup v2 tree (or `systemd-run --user`), which
neither this machine nor a typical CI container offers. Fallback: if the warden cannot
start, terminals are spawned directly as before (`open_warden` yields None): a pooled
terminal's launcher still kills its jobs' leftovers at each job's end, but an engine
killed by SIGKILL then leaves orphans behind.

If the warden dies under a running engine, the processes it held can no longer be
contained: they are killed (their whole session) and reported killed by SIGKILL, and
a new warden is started for the terminals made from then on (`run_wardens`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from engine.errors import SpawnError
from engine.terminals import procs
from engine.terminals.procs import reap
from engine.terminals.pty import SETSID, spawn_on_pty
from engine.terminals.socket_io import receive
from engine.terminals.supervise import supervise

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping, Sequence

log = logging.getLogger(__name__)
WARDEN = str(Path(__file__).with_name("warden_process.py"))


class SessionProcess:
    """A terminal's first process: its pid, and its returncode once it has been reaped
    (by the warden, which reports it, or here when spawned directly)."""

    def __init__(self, pid: int, popen: subprocess.Popen[bytes] | None = None) -> None:
        self.pid = pid
        self._popen = popen
        self._code: int | None = None
        self._ended = anyio.Event()

    @property
    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen is not None else self._code

    def poll(self) -> int | None:
        return self.returncode

    def _exited(self, code: int) -> None:
        self._code = code
        self._ended.set()

    async def wait(self, timeout: float) -> int | None:
        """The returncode, waiting at most `timeout` seconds for it (None: still running)."""
        if self._popen is not None:
            return await reap(self._popen, timeout)
        with anyio.move_on_after(timeout):
            await self._ended.wait()
        return self._code

    def kill(self) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


class Warden:
    """A running warden process and the processes it started."""

    def __init__(self, popen: subprocess.Popen[bytes], ctl: socket.socket) -> None:
        self._popen, self._ctl = popen, ctl
        self._ids = itertools.count(1)
        self._replies: dict[int, tuple[anyio.Event, list[dict[str, object]]]] = {}
        self._live: dict[int, SessionProcess] = {}
        self._dead = anyio.Event()
        self._closing = False

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def alive(self) -> bool:
        return not self._dead.is_set()

    async def wait_dead(self) -> None:
        await self._dead.wait()

    async def spawn(
        self,
        argv: Sequence[str],
        stdio: int,
        *,
        env: Mapping[str, str],
        cwd: str | None = None,
        pass_fds: Sequence[int] = (),
    ) -> SessionProcess:
        """Start argv under the warden as a session leader whose controlling terminal is
        `stdio`; each fd in `pass_fds` keeps its number in the child."""
        ident = next(self._ids)
        request = {"op": "spawn", "id": ident, "argv": [SETSID, "--ctty", *argv],
                   "env": dict(env), "cwd": cwd, "targets": [0, *pass_fds]}  # fmt: skip
        done, reply = anyio.Event(), list[dict[str, object]]()
        self._replies[ident] = (done, reply)
        try:
            if not self.alive:
                raise OSError("the warden is gone")
            socket.send_fds(self._ctl, [json.dumps(request).encode()], [stdio, *pass_fds])
            await done.wait()
        except OSError as exc:
            raise SpawnError(f"cannot start {argv[0]!r}: {exc}") from exc
        finally:
            self._replies.pop(ident, None)
        if not reply or reply[0]["ev"] != "spawned":
            error = reply[0]["error"] if reply else "the warden is gone"
            raise SpawnError(f"cannot start {argv[0]!r}: {error}")
        process = SessionProcess(int(str(reply[0]["pid"])))
        self._live[process.pid] = process
        return process

    async def _listen(self) -> None:
        try:
            while msg := await receive(self._ctl):
                event = json.loads(msg)
                if event["ev"] == "exited":
                    process = self._live.pop(int(event["pid"]), None)
                    if process is not None:
                        process._exited(int(event["code"]))
                elif int(event["id"]) in self._replies:
                    done, reply = self._replies[int(event["id"])]
                    reply.append(event)
                    done.set()
        except (OSError, anyio.ClosedResourceError):
            pass
        finally:
            self._died()

    def _died(self) -> None:
        """No more reports: answer every waiting spawn, and kill what can't be contained."""
        self._dead.set()
        for done, _ in self._replies.values():
            done.set()
        live, self._live = self._live, {}
        for process in live.values():
            if not self._closing:
                log.warning("warden died: killing session %d", process.pid)
            procs.signal_groups(procs.session_groups(process.pid), signal.SIGKILL)
            process._exited(-signal.SIGKILL)

    async def aclose(self) -> None:
        """Close the control socket: the warden kills whatever is left, then exits."""
        self._closing = True
        with contextlib.suppress(OSError):
            self._ctl.shutdown(socket.SHUT_RDWR)
        with anyio.CancelScope(shield=True):
            if await reap(self._popen, 5.0) is None:
                self._popen.kill()
                await reap(self._popen, 2.0)
        self._ctl.close()


async def spawn_session(
    warden: Warden | None,
    argv: Sequence[str],
    stdio: int,
    *,
    env: Mapping[str, str],
    cwd: str | None = None,
    pass_fds: Sequence[int] = (),
) -> SessionProcess:
    """Through the warden when there is a live one, else directly (uncontained)."""
    if warden is not None and warden.alive:
        return await warden.spawn(argv, stdio, env=env, cwd=cwd, pass_fds=pass_fds)
    popen = spawn_on_pty(argv, stdio, env=env, cwd=cwd, pass_fds=pass_fds)
    return SessionProcess(popen.pid, popen)


def _start(fd: int, umask: int) -> subprocess.Popen[bytes] | None:
    try:
        argv = [sys.executable, "-I", "-S", WARDEN, str(fd), f"{umask:o}"]
        return subprocess.Popen(
            argv, pass_fds=[fd], stdin=subprocess.DEVNULL, start_new_session=True
        )
    except OSError:
        return None


@contextlib.asynccontextmanager
async def open_warden(umask: int | None = None) -> AsyncIterator[Warden | None]:
    """Run a warden for the block (None if it cannot start); `umask`: the one session
    processes get (default: the engine's own)."""
    if umask is None:
        umask = os.umask(0o022)
        os.umask(umask)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with theirs:
        popen = _start(theirs.fileno(), umask)
    if popen is None:
        ours.close()
        log.warning("no warden: session processes are not contained")
        yield None
        return
    ours.setblocking(False)
    warden = Warden(popen, ours)
    async with anyio.create_task_group() as tg:
        tg.start_soon(warden._listen)
        try:
            yield warden
        finally:
            await warden.aclose()
            tg.cancel_scope.cancel()


async def run_wardens(
    adopt: Callable[[Warden | None], None],
    umask: int | None = None,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Keep a warden running for new terminals (engine/terminals/supervise.py)."""
    await supervise(lambda: open_warden(umask), adopt, "warden", task_status=task_status)
