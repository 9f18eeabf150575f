"""The process that keeps a pooled terminal warm. Runs standalone: stdlib only, no engine.

It is the PTY's session leader. The engine sends it one JSON line per request on fd N
(argv[1]); for each `run` it starts the job in its own process group (posix_spawn, or
fork + exec when it must print why the job cannot start), makes that group the terminal's
foreground group and waits for it without WUNTRACED, so SIGSTOP from the
engine never wakes it (no "Stopped" message, no terminal grab as a job-control shell would
do). When the job ends it kills leftovers (it is a child subreaper, so orphaned
descendants come back to it), restores the tty modes, flushes input, writes the output
boundary marker through the PTY and reports the exit status on the control socket.
"""

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import sys
import termios
import time
from typing import Any

PR_SET_CHILD_SUBREAPER = 36
_JOB_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)
# What a job gets back at default: the launcher ignores the job signals, Python SIGPIPE/XFSZ.
_DEFAULT_SIGNALS = (*_JOB_SIGNALS, signal.SIGPIPE, signal.SIGXFSZ)


def _job(req: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """The job's argv, and its environment: the launcher's (init's) plus the request's."""
    env = dict(os.environ)
    env.update({str(k): str(v) for k, v in req["env"].items()})
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


def _run(req: dict[str, Any], ctl: socket.socket, marker: bytes, saved: list[Any]) -> None:
    pid = _spawn(req) or _fork(req, ctl)
    _send(ctl, {"ev": "started", "pid": pid})
    status = 0
    while True:
        try:
            done, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if done == pid:
            break
    leftovers = _reap_all(pid)
    os.tcsetpgrp(0, os.getpgrp())
    termios.tcsetattr(0, termios.TCSANOW, saved)
    termios.tcflush(0, termios.TCIFLUSH)
    os.write(1, marker)
    code = os.waitstatus_to_exitcode(status)
    _send(
        ctl,
        {
            "ev": "exited",
            "code": code if code >= 0 else None,
            "signal": -code if code < 0 else None,
            "leftovers": leftovers,
        },
    )


def _send(ctl: socket.socket, msg: dict[str, object]) -> None:
    ctl.sendall(json.dumps(msg).encode() + b"\n")


def main() -> None:
    ctl = socket.socket(fileno=int(sys.argv[1]))
    ctl.set_inheritable(False)  # jobs must not hold the engine's channel
    marker = sys.argv[2].encode()
    for sig in _JOB_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    saved = termios.tcgetattr(0)
    _send(ctl, {"ev": "ready", "pid": os.getpid()})
    buf = b""
    while True:
        data = ctl.recv(65536)
        if not data:
            return  # the engine went away: nothing left to serve
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            req = json.loads(line)
            if req["op"] == "run":
                _run(req, ctl, marker, saved)
            elif req["op"] == "ping":
                _send(ctl, {"ev": "pong"})


if __name__ == "__main__":
    main()
