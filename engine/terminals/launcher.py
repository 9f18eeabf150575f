"""The process that keeps a pooled terminal warm. Runs standalone: stdlib only, no engine.

It is the PTY's session leader. The engine sends it one JSON line per request on fd N
(argv[1]); for each `run` it starts the job in its own process group (posix_spawn, or
fork + exec when it must print why the job cannot start), makes that group the terminal's
foreground group and waits for it without WUNTRACED, so SIGSTOP from the
engine never wakes it (no "Stopped" message, no terminal grab as a job-control shell would
do). When the job ends it kills leftovers (it is a child subreaper, so orphaned
descendants come back to it), restores the tty (`_Tty`: foreground group, modes, file status
flags, flow control; echo stays off until the next job starts), flushes input, writes the
output boundary marker through the PTY (never blocking for more than RESTORE_DEADLINE) and
reports the exit status on the control socket, saying whether the terminal was restored.

Requests: `run` {id, argv, env, cwd, path_first?}; `next` {the same, cols, rows}: the
job's follower, started the moment the running job exits 0, without waiting for the engine
(under load that round trip costs milliseconds, bench/forkjoin.py); `drop` {id}: forget the
follower; `ping`. Events: `ready`, `started` {id, pid, at}, `exited` {id, code, signal, leftovers,
at, restored: false when the tty could not be put back or the marker not written (the
engine then discards the terminal), next: the follower's id if it starts now; a follower
it does not name is dropped}, `dropped` {id} (a follower dropped on request, or sent too
late to follow anything), `pong` {clean: the tty is as the restore left it}. The
`at` times (wall clock) are taken just before the fork and right after the reap, as the
shell's `time` does, so the engine's own wake-ups do not count in a job's run time.

Size: a standalone stdlib script (`python -I -S`) beside each PTY: it cannot import helpers
from the package.
"""

import contextlib
import ctypes
import fcntl
import json
import os
import select
import shutil
import signal
import socket
import struct
import sys
import termios
import time
from collections import deque
from typing import Any

PR_SET_CHILD_SUBREAPER = 36
ORPHAN_REAP_MS = 1000  # how often a running job's orphaned descendants are reaped
RESTORE_DEADLINE = 5.0  # seconds the end marker may wait for room in the PTY
_JOB_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)
# What a job gets back at default: the launcher ignores the job signals, Python SIGPIPE/XFSZ.
_DEFAULT_SIGNALS = (*_JOB_SIGNALS, signal.SIGPIPE, signal.SIGXFSZ)


def _job(req: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """The job's argv, and its environment: the launcher's (init's) plus the request's."""
    env = dict(os.environ)
    env.update({str(k): str(v) for k, v in req["env"].items()})
    first = req.get("path_first")
    if first:  # before the PATH it would have (a host's `swarmdeck bus`)
        env["PATH"] = f"{first}:{env['PATH']}" if env.get("PATH") else str(first)
    return [str(a) for a in req["argv"]], env


def _children() -> list[int]:
    pids: list[int] = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/children") as f:
                pids.extend(int(p) for p in f.read().split())
        except OSError:
            pass
    return pids


def _reap_all(main_pid: int) -> int:
    """Kill and reap every remaining descendant; return how many there were."""
    killed = 0
    for _ in range(50):
        kids = [p for p in _children() if p != main_pid]
        if not kids:
            break
        for pid in kids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        _reap_nowait()
        time.sleep(0.002)
    _reap_nowait()
    return killed


def _reap_nowait() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _exec_job(req: dict[str, object]) -> None:
    """In the forked child: become the foreground job and exec; never returns."""
    try:
        os.setpgid(0, 0)
        os.tcsetpgrp(0, os.getpid())
        for sig in _DEFAULT_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        argv, env = _job(req)
        cwd = req.get("cwd")
        if cwd:
            try:
                os.chdir(str(cwd))
            except OSError as exc:
                os.write(2, f"swarmdeck: cannot enter {cwd}: {exc.strerror}\r\n".encode())
                os._exit(126)
        os.execvpe(argv[0], argv, env)
    except OSError as exc:
        what = (req.get("argv") or ["?"])[0]  # type: ignore[index]
        os.write(2, f"swarmdeck: cannot run {what}: {exc.strerror}\r\n".encode())
        os._exit(127 if isinstance(exc, FileNotFoundError) else 126)
    except BaseException:
        os._exit(126)


def _spawn(req: dict[str, Any]) -> int | None:
    """posix_spawn the job in its own process group (vfork-fast); None if it cannot.

    fork() of even this small process costs ~2 ms before exec; posix_spawn ~0.8 ms. The job
    may run before it is the foreground group, and a tty access then stops it (SIGTTIN or
    SIGTTOU), so it is continued once it is the foreground group.
    """
    argv, env = _job(req)
    path = shutil.which(argv[0], path=env.get("PATH")) if "/" not in argv[0] else argv[0]
    cwd = req.get("cwd")
    if path is None:
        return None  # the fork path prints the proper "cannot run" message
    home = os.getcwd()
    try:
        if cwd:
            os.chdir(str(cwd))
        pid = os.posix_spawn(
            path,
            argv,
            env,
            setpgroup=0,
            setsigmask=(),
            setsigdef=_DEFAULT_SIGNALS,
        )
    except OSError:
        return None
    finally:
        os.chdir(home)
    with contextlib.suppress(OSError):
        os.tcsetpgrp(0, pid)
    # Unconditionally: SIGCONT also discards a SIGTTIN/SIGTTOU still pending, which a
    # /proc look could not see yet; a spurious one right after exec is harmless.
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGCONT)
    return pid


def _fork(req: dict[str, Any], ctl: socket.socket) -> int:
    pid = os.fork()
    if pid == 0:
        ctl.close()
        _exec_job(req)
    with contextlib.suppress(OSError):  # the child got there first, or already exec'd
        os.setpgid(pid, pid)
    with contextlib.suppress(OSError):
        os.tcsetpgrp(0, pid)
    return pid


class _Channel:
    """The engine's control socket: one JSON request per line in, one event per line out."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.open = True
        self.requests: deque[dict[str, Any]] = deque()
        self._buf = b""

    def fill(self, block: bool) -> None:
        """Read what the engine sent (waiting for it if `block`); at its end, `open` is False."""
        try:
            data = self.sock.recv(65536, 0 if block else socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        if not data:
            self.open = False
            return
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        self.requests.extend(json.loads(line) for line in lines)

    def send(self, msg: dict[str, object]) -> None:
        self.sock.sendall(json.dumps(msg).encode() + b"\n")


class _Tty:
    """The PTY as the launcher found it, and how to put it back after each job.

    A job shares the launcher's open file description of the PTY, so O_NONBLOCK set by a
    job stays for the next one unless the file status flags are restored too; and one that
    stopped output (tcflow TCOOFF, or Ctrl-S typed into it) would block every later write.
    Between jobs echo is off: a late answer to an ended job's terminal query must not be
    echoed onto any screen (the input is flushed again when the next job starts).
    """

    def __init__(self) -> None:
        self.modes = termios.tcgetattr(0)
        self.flags = fcntl.fcntl(0, fcntl.F_GETFL)
        quiet = termios.tcgetattr(0)
        quiet[3] &= ~(termios.ECHO | termios.ECHONL)
        termios.tcsetattr(0, termios.TCSANOW, quiet)
        self.quiet = termios.tcgetattr(0)  # as the kernel keeps it, to compare with
        # Its own description of the PTY, non-blocking: no job can change how it writes.
        self.out = os.open(os.ttyname(0), os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK)

    def for_job(self) -> None:
        """Just before a job starts: nothing typed or answered meanwhile, the init's modes."""
        termios.tcflush(0, termios.TCIFLUSH)
        termios.tcsetattr(0, termios.TCSANOW, self.modes)

    def hush(self) -> None:
        """Echo off at once, before the leftovers are killed: answers may be on their way."""
        with contextlib.suppress(OSError):
            termios.tcsetattr(0, termios.TCSANOW, self.quiet)

    def restore(self, marker: bytes) -> bool:
        """After a job: take the terminal back and write the marker; False if it failed."""
        try:
            with contextlib.suppress(OSError):
                os.tcsetpgrp(0, os.getpgrp())
            termios.tcsetattr(0, termios.TCSANOW, self.quiet)
            fcntl.fcntl(0, fcntl.F_SETFL, self.flags)
            termios.tcflow(0, termios.TCOON)
            termios.tcflush(0, termios.TCIFLUSH)
        except OSError:
            return False
        return self.clean() and self._write(marker)

    def clean(self) -> bool:
        """Modes and file status flags are as a restore leaves them."""
        try:
            modes, flags = termios.tcgetattr(0), fcntl.fcntl(0, fcntl.F_GETFL)
        except OSError:
            return False
        return modes == self.quiet and flags == self.flags

    def _write(self, data: bytes) -> bool:
        """Write all of data within RESTORE_DEADLINE. A reader slow to drain (a flood the
        engine is still digesting) makes room in time; output stopped again meanwhile
        (Ctrl-S typed just now) is restarted at every tick."""
        deadline = time.monotonic() + RESTORE_DEADLINE
        poller = select.poll()
        poller.register(self.out, select.POLLOUT)
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.out, view) :]
                continue
            except BlockingIOError:
                pass
            except OSError:
                return False
            if time.monotonic() > deadline:
                return False
            if not poller.poll(100):
                with contextlib.suppress(OSError):
                    termios.tcflow(0, termios.TCOON)
        return True


class Launcher:
    """Serves the engine's requests; runs one job at a time, and its follower."""

    def __init__(self, chan: _Channel, marker: bytes) -> None:
        self.chan, self.marker = chan, marker
        self.tty = _Tty()
        self.follower: dict[str, Any] | None = None  # runs when the current job exits 0

    def serve(self) -> None:
        while True:
            if not self.chan.requests:
                self.chan.fill(block=True)
                if not self.chan.open:
                    return  # the engine went away: nothing left to serve
                continue
            req = self.chan.requests.popleft()
            if req["op"] == "run":
                self.run(req)
            elif req["op"] == "next":  # sent while the job it was to follow ended
                self.chan.send({"ev": "dropped", "id": req["id"]})
            else:
                self.answer(req)

    def answer(self, req: dict[str, Any]) -> None:
        """A request that does not start a job now: ping, next (a follower), drop (it)."""
        op = req["op"]
        if op == "ping":
            self.chan.send({"ev": "pong", "clean": self.tty.clean()})
        elif op == "next":
            if self.follower is not None:
                self.chan.send({"ev": "dropped", "id": self.follower["id"]})
            self.follower = req
        elif op == "drop" and self.follower is not None and self.follower["id"] == req["id"]:
            self.follower = None
            self.chan.send({"ev": "dropped", "id": req["id"]})

    def run(self, req: dict[str, Any]) -> None:
        """Run a job, then its follower if it exited 0 (no round trip to the engine)."""
        job: dict[str, Any] | None = req
        while job is not None:
            job = self._run_one(job)

    def _run_one(self, req: dict[str, Any]) -> dict[str, Any] | None:
        if req["op"] == "next":
            _set_size(int(req["cols"]), int(req["rows"]))
        self.tty.for_job()
        started = time.time()  # like the shell's `time`: from just before the fork
        pid = _spawn(req) or _fork(req, self.chan.sock)
        self.chan.send({"ev": "started", "id": req["id"], "pid": pid, "at": started})
        status = self._wait(pid)
        ended = time.time()
        self.tty.hush()
        leftovers = _reap_all(pid)
        restored = self.tty.restore(self.marker)
        self._answer_waiting()  # a drop sent before the job ended must count
        code = os.waitstatus_to_exitcode(status)
        follower, self.follower = self.follower, None
        ok = code == 0 and restored and self.chan.open
        after = follower if follower is not None and ok else None
        msg: dict[str, object] = {
            "ev": "exited",
            "id": req["id"],
            "code": code if code >= 0 else None,
            "signal": -code if code < 0 else None,
            "leftovers": leftovers,
            "at": ended,
            "restored": restored,
            "next": after["id"] if after is not None else None,  # any other follower: dropped
        }
        self.chan.send(msg)
        return after

    def _answer_waiting(self) -> None:
        """Answer what the engine has sent meanwhile, up to its next `run`."""
        if self.chan.open:
            self.chan.fill(block=False)
        while self.chan.requests and self.chan.requests[0]["op"] != "run":
            self.answer(self.chan.requests.popleft())

    def _wait(self, pid: int) -> int:
        """The job's wait status; meanwhile answer the engine and reap orphans (this is a
        subreaper), at least once a second."""
        pidfd = os.pidfd_open(pid)
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if self.chan.open:
            poller.register(self.chan.sock, select.POLLIN)
        try:
            while True:
                ready = dict(poller.poll(ORPHAN_REAP_MS))
                if self.chan.sock.fileno() in ready:
                    self._answer_waiting()
                    if not self.chan.open:
                        poller.unregister(self.chan.sock)
                status = _reap_orphans(pid)
                if status is not None:
                    return status
        finally:
            os.close(pidfd)


def _reap_orphans(pid: int) -> int | None:
    """Reap every child that has ended; the job's wait status if it is among them."""
    while True:
        try:
            done, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:  # not ours to wait for: never report a success
            return 255 << 8
        if done == 0:
            return None
        if done == pid:
            return status


def _set_size(cols: int, rows: int) -> None:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def main() -> None:
    ctl = socket.socket(fileno=int(sys.argv[1]))
    ctl.set_inheritable(False)  # jobs must not hold the engine's channel
    for sig in _JOB_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    chan = _Channel(ctl)
    launcher = Launcher(chan, sys.argv[2].encode())
    chan.send({"ev": "ready", "pid": os.getpid()})
    launcher.serve()


if __name__ == "__main__":
    main()
