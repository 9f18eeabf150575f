"""Find, signal and reap the processes of a terminal's session (through /proc and pidfds).

A session's program may start its own process groups (an interactive shell puts each job
in one), so pause/terminate act on every group in the PTY's session, not only the first.
"""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING, NamedTuple

import anyio

if TYPE_CHECKING:
    import subprocess

    from engine.terminals.warden import SessionProcess


class ProcStat(NamedTuple):
    state: str  # one letter: R, S, T, Z, ...
    pgrp: int
    session: int
    ppid: int = 0
    tpgid: int = 0  # the foreground process group of its controlling terminal


# System call numbers a tty access stops in: read(v) for SIGTTIN; write(v), ioctl (tcsetattr
# and friends) for SIGTTOU. The kernel records which signal stopped a process nowhere in
# /proc, but /proc/<pid>/syscall names the call it is stopped in.
_TTY_CALLS: dict[str, tuple[frozenset[int], frozenset[int]]] = {
    "x86_64": (frozenset({0, 17, 19, 295}), frozenset({1, 16, 18, 20, 296})),
    "aarch64": (frozenset({63, 65, 67, 69}), frozenset({29, 64, 66, 68, 70})),
}


def read_stat(pid: int | str) -> ProcStat | None:
    """The fields we use from /proc/<pid>/stat, or None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()  # the name may hold spaces and parentheses
    state, ppid, pgrp, sid, tpgid = fields[0].decode(), *map(int, (fields[1:4] + fields[5:6]))
    return ProcStat(state, pgrp, sid, ppid, tpgid)


def lineage(pid: int, stop: int, limit: int = 64) -> list[ProcStat]:
    """`pid` and its ancestors, nearest first, up to (not including) `stop` or pid 1: who
    a process belongs to, when it left its job's group or session (setsid, set -m)."""
    chain: list[ProcStat] = []
    while pid > 1 and pid != stop and len(chain) < limit:
        st = read_stat(pid)
        if st is None:
            break
        chain.append(st)
        pid = st.ppid
    return chain


def _all() -> list[tuple[int, ProcStat]]:
    stats = ((int(e), read_stat(e)) for e in os.listdir("/proc") if e.isdigit())
    return [(pid, st) for pid, st in stats if st is not None]


def session_groups(sid: int, exclude: int | None = None) -> list[int]:
    """Process groups with members in session `sid`, the group `sid` itself first."""
    groups = {st.pgrp for _, st in _all() if st.session == sid and st.pgrp != exclude}
    return sorted(groups, key=lambda g: (g != sid, g))


def tty_stops() -> dict[int, str]:
    """Per session id, why job control stopped one of its processes: "tty output" (SIGTTOU:
    a background group wrote to the tty or changed its modes), "tty input" (SIGTTIN: it
    read), "a signal" otherwise. Only processes outside the terminal's foreground group
    count: a tty access stops only those. One /proc scan for every terminal at once."""
    found: dict[int, str] = {}
    for pid, st in _all():
        if st.state == "T" and st.tpgid > 0 and st.pgrp != st.tpgid and st.session not in found:
            found[st.session] = _stopped_in(pid)
    return found


def _stopped_in(pid: int) -> str:
    reads, writes = _TTY_CALLS.get(os.uname().machine, (frozenset(), frozenset()))
    try:
        with open(f"/proc/{pid}/syscall") as f:
            call = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return "a signal"
    return "tty input" if call in reads else "tty output" if call in writes else "a signal"


def signal_groups(groups: list[int], sig: int) -> int:
    """Send sig to each group; return how many groups still existed."""
    sent = 0
    for pgid in groups:
        try:
            os.killpg(pgid, sig)
            sent += 1
        except ProcessLookupError:
            pass
    return sent


def process_state(pid: int) -> str:
    """The one-letter /proc state (R, S, T, Z, ...), or '' if the process is gone."""
    st = read_stat(pid)
    return st.state if st is not None else ""


def alive(pid: int | None) -> bool:
    """Running (or stopped), not ended: a zombie has exited, only its reaping is due."""
    return pid is not None and process_state(pid) not in ("", "Z")


def group_members(pgid: int) -> list[int]:
    """Pids whose process group is pgid."""
    return [pid for pid, st in _all() if st.pgrp == pgid]


async def wait_group_state(pgid: int, stopped: bool, timeout: float = 0.5) -> bool:
    """Poll until every member of the group is (or is no longer) stopped."""
    with anyio.move_on_after(timeout):
        while True:
            states = {st.state for _, st in _all() if st.pgrp == pgid} - {"Z"}
            if stopped == (states <= {"T", "t"}):
                return True
            await anyio.sleep(0.001)  # the kernel has no event for "stopped"
    return False


async def reap(popen: subprocess.Popen[bytes], timeout: float) -> int | None:
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


async def kill_session(sid: int, process: SessionProcess) -> None:
    signal_groups(session_groups(sid), signal.SIGKILL)
    process.kill()
    await process.wait(5.0)
