"""Open PTYs and start processes on them without forking the engine.

`subprocess.Popen` uses vfork/posix_spawn when no `preexec_fn` is given, so its cost does
not grow with the engine's RSS (bench/spawn.py). The child must still become a session
leader with the PTY as controlling terminal; util-linux `setsid --ctty` does exactly that
(setsid(2) + TIOCSCTTY on stdin) before exec'ing the real program, keeping the same pid.
Session processes are started the same way by the warden (terminals/warden.py).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import struct
import subprocess
import termios
from typing import TYPE_CHECKING

from engine.errors import SpawnError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

SETSID = shutil.which("setsid") or "/usr/bin/setsid"
IUTF8 = 0o40000  # Linux's value; Python's termios names it only from 3.12


def open_pty(cols: int, rows: int) -> tuple[int, int]:
    """Return (master, slave); the master is non-blocking and neither fd is inherited.

    IUTF8 is set as tmux does: the text is UTF-8, so canonical-mode Backspace erases a
    whole character, not its last byte. A pooled terminal's launcher keeps it through
    every restore (it restores the modes it started with)."""
    master, slave = os.openpty()
    os.set_blocking(master, False)
    set_winsize(master, cols, rows)
    modes = termios.tcgetattr(slave)
    modes[0] |= IUTF8
    termios.tcsetattr(slave, termios.TCSANOW, modes)
    return master, slave


def set_winsize(fd: int, cols: int, rows: int) -> None:
    """TIOCSWINSZ; on the master it makes the kernel send SIGWINCH to the foreground group."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def get_winsize(fd: int) -> tuple[int, int]:
    """Return (cols, rows) of the PTY behind fd."""
    rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    return cols, rows


def spawn_on_pty(
    argv: Sequence[str],
    slave: int,
    *,
    env: Mapping[str, str],
    cwd: str | None = None,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """Start argv as a session leader whose controlling terminal is `slave`."""
    try:
        return subprocess.Popen(
            [SETSID, "--ctty", *argv],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=dict(env),
            cwd=cwd,
            close_fds=True,
            pass_fds=tuple(pass_fds),
        )
    except OSError as exc:
        raise SpawnError(f"cannot start {argv[0]!r}: {exc.strerror}") from exc


def read_available(fd: int, budget: int) -> tuple[bytes, bool]:
    """Read up to `budget` bytes without blocking; return (data, eof)."""
    chunks: list[bytes] = []
    total = 0
    while total < budget:
        try:
            data = os.read(fd, min(65536, budget - total))
        except BlockingIOError:
            return b"".join(chunks), False
        except OSError:  # EIO: every slave end is closed
            return b"".join(chunks), True
        if not data:
            return b"".join(chunks), True
        chunks.append(data)
        total += len(data)
    return b"".join(chunks), False
