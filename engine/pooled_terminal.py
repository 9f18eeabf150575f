"""A pooled terminal: a warm PTY whose session leader is the launcher (engine/launcher.py).

The shell runs the pool's `init` once and execs the launcher, which then runs one job after
another. A job's end is reported on a private control socket, and the output boundary is an
unguessable marker the launcher writes through the PTY, so every byte is attributed to the
right session.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio

from engine.errors import SpawnError, TerminalError
from engine.pty import spawn_on_pty
from engine.pty_relay import partial_suffix
from engine.terminal import ExitStatus, Job, Terminal, base_env, kill_session, reap

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable

    from anyio.abc import TaskGroup

    from engine.relay import PtyRelay

FRESH_REPORT = 1.0  # seconds an exit report counts as a successful health check
LAUNCHER = str(Path(__file__).with_name("launcher.py"))


class PooledTerminal(Terminal):
    """A warm PTY: shell init done once, then any number of jobs, one at a time."""

    kind: Literal["pooled", "fresh"] = "pooled"

    def __init__(self, cols: int, rows: int, relay: PtyRelay | None = None) -> None:
        self._marker = f"\x1b]6973;swarmdeck-end;{secrets.token_hex(8)}\x07".encode()
        super().__init__(cols, rows, relay)
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
            with anyio.move_on_after(0.5):  # the shell's last words, to say why it failed
                await self._eof.wait()
            await self.aclose()
            raise SpawnError(self._failure(exc)) from exc
        except BaseException:
            await self.aclose()
            raise
        self.launcher_pid = int(msg["pid"])
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

    def _deliver(self, data: bytes) -> None:
        data = self._pending + data
        self._pending = b""
        at = data.find(self._marker)
        if at >= 0:
            if self._sink is not None and at:
                self._sink(data[:at])
            self._boundary.set()
            return
        keep = partial_suffix(data, self._marker)
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
                    await reap(self._popen, 0.2)
                await kill_session(self._popen.pid, self._popen)
        await self._close_fds()
        if self._child_ctl.fileno() >= 0:
            self._child_ctl.close()


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"
