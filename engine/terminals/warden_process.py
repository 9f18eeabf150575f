"""The warden: parent of every session process, and their end when the engine ends.

Runs standalone (stdlib only, `python -I -S warden_process.py CTL_FD UMASK`), started by
the engine (engine/terminals/warden.py) in its own session, so a Ctrl-C or a hang-up of
the engine's terminal never reaches it. It is a child subreaper (PR_SET_CHILD_SUBREAPER):
whatever a session leaves behind (a `setsid -f` daemon, a double fork, a process that
ignores SIGHUP) is re-parented to it, not to PID 1. When its control socket ends (the
engine exited, cleanly or by SIGKILL) it kills every descendant it has, round after
round until none is left, and exits. So nothing a session started outlives the engine.

Requests (one SEQPACKET datagram each, JSON, fds attached): `spawn` {id, argv, env,
cwd, targets}: the attached fds become `targets` in the child (the first also stdout
and stderr); the child gets default signal dispositions and the user's umask. Events:
`spawned` {id, pid} or `failed` {id, error}; `exited` {pid, code} for each child it
spawned (code as subprocess's returncode: negative for a signal). Orphans are reaped
silently.
"""

import contextlib
import ctypes
import json
import os
import select
import signal
import socket
import sys

PR_SET_CHILD_SUBREAPER = 36
_IGNORED = (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGTSTP, signal.SIGTTIN,
            signal.SIGTTOU, signal.SIGPIPE)  # fmt: skip
_DEFAULT = (*_IGNORED, signal.SIGTERM, signal.SIGCHLD, signal.SIGXFSZ)


def _descendants() -> list[int]:
    """Every live descendant, found through /proc/<pid>/task/<tid>/children."""
    found: list[int] = []
    todo = [os.getpid()]
    while todo:
        pid = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            found.extend(kids)
            todo.extend(kids)
    return found


def kill_everything() -> None:
    """SIGKILL every descendant and reap, until none is left (a forking process may add
    some between rounds; those killed re-parent their children to us)."""
    for _ in range(200):
        pids = _descendants()
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _reap(set(), None)
        select.select([], [], [], 0.005)


def _reap(spawned: set[int], ctl: socket.socket | None) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid in spawned:
            spawned.discard(pid)
            if ctl is not None:
                _send(ctl, {"ev": "exited", "pid": pid, "code": os.waitstatus_to_exitcode(status)})


def _send(ctl: socket.socket, msg: dict[str, object]) -> None:
    with contextlib.suppress(OSError):  # the engine is gone: the loop sees the end next
        ctl.send(json.dumps(msg).encode())


def _spawn(req: dict[str, object], fds: list[int]) -> int:
    """posix_spawn the request with its fds in place; raises OSError."""
    targets = [int(t) for t in req["targets"]]  # type: ignore[attr-defined]
    # Via copies above every source and target: a target may be another source's number.
    high = max([*fds, *targets, 2]) + 1
    actions: list[tuple[int, ...]] = []
    for i, fd in enumerate(fds):
        actions.append((os.POSIX_SPAWN_DUP2, fd, high + i))
    for i, target in enumerate(targets):
        actions.append((os.POSIX_SPAWN_DUP2, high + i, target))
    if targets and targets[0] == 0:
        actions += [(os.POSIX_SPAWN_DUP2, high, 1), (os.POSIX_SPAWN_DUP2, high, 2)]
    actions += [(os.POSIX_SPAWN_CLOSE, high + i) for i in range(len(fds))]
    argv = [str(a) for a in req["argv"]]  # type: ignore[attr-defined]
    env = {str(k): str(v) for k, v in req["env"].items()}  # type: ignore[attr-defined]
    home = os.getcwd()
    cwd = req.get("cwd")
    try:
        if cwd:
            os.chdir(str(cwd))
        return os.posix_spawnp(argv[0], argv, env, file_actions=actions, setsigdef=_DEFAULT)
    finally:
        os.chdir(home)


def _request(ctl: socket.socket, spawned: set[int]) -> bool:
    """Serve one request; False once the engine has gone."""
    try:
        data, fds, _, _ = socket.recv_fds(ctl, 1 << 20, 16, socket.MSG_CMSG_CLOEXEC)
    except BlockingIOError:
        return True
    except OSError:
        return False
    if not data:
        return False
    try:
        req = json.loads(data)
        pid = _spawn(req, fds)
    except OSError as exc:
        _send(ctl, {"ev": "failed", "id": req["id"], "error": exc.strerror or str(exc)})
    else:
        spawned.add(pid)
        _send(ctl, {"ev": "spawned", "id": req["id"], "pid": pid})
    finally:
        for fd in fds:
            os.close(fd)
    return True


def serve(ctl: socket.socket) -> None:
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: None)  # handled below: as the engine's end
    spawned: set[int] = set()
    poller = select.poll()
    poller.register(ctl, select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    while True:
        ready = dict(poller.poll())
        if wake_r in ready:
            woken = os.read(wake_r, 512)
            if signal.SIGTERM in woken:
                return
        _reap(spawned, ctl)
        if ctl.fileno() in ready and not _request(ctl, spawned):
            return


def main() -> None:
    ctl = socket.socket(fileno=int(sys.argv[1]))
    ctl.set_inheritable(False)
    os.umask(int(sys.argv[2], 8))
    for sig in _IGNORED:
        signal.signal(sig, signal.SIG_IGN)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    try:
        serve(ctl)
    finally:
        kill_everything()


if __name__ == "__main__":
    main()
