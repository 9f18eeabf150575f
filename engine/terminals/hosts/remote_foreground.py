"""Whether a job on a host waits for keys (at a prompt), asked over SSH: attention's idle
mark for remote sessions (docs/attention.md, docs/hosts.md).

Locally engine/terminals/foreground.py asks the kernel through the PTY's master. On a host
the master is sshd's, so a short exec runs the same test there, from the job's side: the
job's `/proc/PID/stat` gives its terminal and that terminal's foreground process group;
the group's leader must sleep in a `read` of that terminal, or in a `poll`/`select`/`epoll`
wait with the terminal in non-canonical mode (the same syscall table). It answers by its
exit status (0: waiting), and anything it cannot read (python3 missing, a `ptrace_scope`
that hides `/proc/PID/syscall` from a process that is not an ancestor) counts as "not at
a prompt", as locally when unsure.

The session asks every half second, and only about a session quiet for its `idle` time,
synchronously: `ask` returns the last answer and starts a probe in the background when one
is due, so the mark comes one probe late (a channel's round trip). While the answer stays
"no", probes space out (1 s, doubling to 16 s); the job's output resets that, and drops a
"yes" at once (a program that prints has moved on). Each probe is one short exec (a channel
of max_channels while it runs, a python3 start on the host).
"""

from __future__ import annotations

import shlex
import time
from typing import TYPE_CHECKING

from engine.errors import HostError
from engine.terminals.foreground import SYSCALLS

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from engine.terminals.hosts.host_link import HostLink

__all__ = ["RemoteForeground", "probe_command"]

PROBE_FIRST = 1.0  # s between probes after output, doubling while the answer is "no"
PROBE_MAX = 16.0

_PROBE = f"""
import os, sys, termios
reads, polls = {SYSCALLS!r}.get(os.uname().machine, ((), ()))
def stat(pid):
    with open('/proc/%d/stat' % pid) as f:
        return f.read().rsplit(')', 1)[1].split()
def canonical(group, tty):
    for name in os.listdir('/proc/%d/fd' % group):
        path = '/proc/%d/fd/%s' % (group, name)
        if os.stat(path).st_rdev == tty:
            fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
            try:
                return bool(termios.tcgetattr(fd)[3] & termios.ICANON)
            finally:
                os.close(fd)
    return True
try:
    job = stat(int(sys.argv[1]))
    tty, group = int(job[4]), int(job[5])
    if tty == 0 or group <= 0 or stat(group)[0] != 'S':
        sys.exit(1)
    with open('/proc/%d/syscall' % group) as f:
        fields = f.read().split()
    number, fd = int(fields[0]), int(fields[1], 16)
    if number in reads:
        sys.exit(0 if os.stat('/proc/%d/fd/%d' % (group, fd)).st_rdev == tty else 1)
    sys.exit(0 if number in polls and not canonical(group, tty) else 1)
except (OSError, ValueError, IndexError, termios.error):
    sys.exit(1)
"""


def probe_command(pid: int) -> str:
    """A command whose exit status is 0 when job `pid`'s terminal waits for keys."""
    return f"exec python3 -I -S -c {shlex.quote(_PROBE)} {pid}"


class RemoteForeground:
    """The last answer about one remote job, and the next probe."""

    def __init__(self, host: HostLink, tg: TaskGroup) -> None:
        self._host, self._tg = host, tg
        self.answer = False
        self.probes = 0  # probes answered (a figure; tests wait on it)
        self._every = PROBE_FIRST
        self._next_at = 0.0
        self._asking = False
        self._output = 0  # output seen so far: a probe begun before the latest is stale

    def ask(self, pid: int) -> bool:
        """The last answer; a probe starts in the background if one is due."""
        if not self._asking and time.monotonic() >= self._next_at:
            self._asking = True
            self._tg.start_soon(self._probe, pid)
        return self.answer

    async def _probe(self, pid: int) -> None:
        begun = self._output
        try:
            exited = await self._host.run(probe_command(pid))
            waiting = exited.code == 0
        except HostError:
            waiting = False
        finally:
            self._asking = False
        self.probes += 1
        if begun != self._output:  # it printed meanwhile: the answer is stale
            return
        self.answer = waiting
        self._next_at = time.monotonic() + self._every
        self._every = PROBE_FIRST if waiting else min(self._every * 2, PROBE_MAX)

    def output(self) -> None:
        """The job printed: not waiting any more, and the next probe may come soon."""
        self._output += 1
        self.answer = False
        self._every = PROBE_FIRST
        self._next_at = 0.0
