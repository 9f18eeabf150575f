"""Whether a terminal's foreground program is waiting for the keyboard (at a prompt).

Quiet output alone does not say it: a build between two lines, `sleep`, or a server
waiting for clients are quiet too. The kernel says more. The PTY's foreground process
group (`tcgetpgrp` on the master) is the program the keyboard would reach: a shell running
a command has handed the terminal to that command's group. Its leader is waiting for keys
when it sleeps in

* a `read` of this terminal (a shell or a script's `read`, cooked mode), found in
  `/proc/PID/syscall` (the call and its fd) and `/proc/PID/fd/FD` (the same tty), or
* a `poll`/`select`/`epoll` wait while the terminal is in non-canonical mode: a line
  editor (readline, prompt_toolkit) or a full-screen program (Claude Code's Ink, vim)
  reads key by key; a server in a poll leaves the terminal cooked.

So `sleep 100`, `make` (a shell in `wait4`, the compiler running), `python -m http.server`
(cooked tty) are not at a prompt; bash, `read`, python's `input()` and agents waiting for
a reply are. An agent waiting on the network with a quiet screen would count as waiting:
agents animate a spinner meanwhile, and output clears the mark. Syscall numbers are known
for x86_64 and aarch64; elsewhere nobody is ever "at a prompt".
"""

from __future__ import annotations

import fcntl
import os
import platform
import struct
import termios

from engine.terminals.procs import read_stat

SYSCALLS: dict[str, tuple[frozenset[int], frozenset[int]]] = {
    # (reads, polls): read, readv, pread64; poll, select, pselect6, ppoll, epoll_wait,
    # epoll_pwait, epoll_pwait2
    "x86_64": (frozenset({0, 19, 17}), frozenset({7, 23, 270, 271, 232, 281, 441})),
    "aarch64": (frozenset({63, 65, 67}), frozenset({72, 73, 22, 441})),
}
TIOCGPTN = 0x80045430  # _IOR('T', 0x30, unsigned int); the termios module lacks it
READS, POLLS = SYSCALLS.get(platform.machine(), (frozenset(), frozenset()))


def waits_for_keys(master: int) -> bool:
    """True when the foreground program of the PTY `master` sleeps waiting for
    input from it (module docstring); False when unsure, or when anything is gone."""
    try:
        group = os.tcgetpgrp(master)
        canonical = bool(termios.tcgetattr(master)[3] & termios.ICANON)
        tty = os.stat(_pts_name(master)).st_rdev
    except (OSError, termios.error):
        return False
    stat = read_stat(group)
    if stat is None or stat.state != "S":
        return False
    call = _syscall(group)
    if call is None:
        return False
    number, fd = call
    if number in READS:
        return _is_tty(group, fd, tty)
    return number in POLLS and not canonical


def _pts_name(master: int) -> str:
    """The slave's path (`os.ptsname` is Python 3.13's)."""
    number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
    return f"/dev/pts/{number}"


def _syscall(pid: int) -> tuple[int, int] | None:
    """The blocked system call's number and first argument, or None (running, gone)."""
    try:
        with open(f"/proc/{pid}/syscall", "rb") as f:
            fields = f.read().split()
        return int(fields[0]), int(fields[1], 16)
    except (OSError, ValueError, IndexError):
        return None


def _is_tty(pid: int, fd: int, tty: int) -> bool:
    try:
        return os.stat(f"/proc/{pid}/fd/{fd}").st_rdev == tty
    except (OSError, OverflowError):
        return False
