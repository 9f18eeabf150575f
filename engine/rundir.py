"""The run directory: private to its user, and held by one engine at a time.

Recordings, screens, the journal and the SSH audit log say what every session printed,
so the directory is made 0700 and the engine's files 0600: the engine runs under umask
077 for as long as it holds the directory (session processes get the user's own umask
back from the warden, engine/terminals/warden_process.py). A second engine on the same
directory would delete the first one's bus socket, reuse its journal and overwrite its
recordings, so the directory is locked (`flock` on `.lock`, released by the kernel when
the holder dies, even by SIGKILL) before anything in it is touched, and a second claim
is refused with the holder's pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from contextlib import contextmanager
from typing import TYPE_CHECKING

from engine.errors import SwarmdeckError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

LOCK_NAME = ".lock"
PRIVATE_UMASK = 0o077


class RunDirInUseError(SwarmdeckError):
    """Another live engine holds this run directory."""


@contextmanager
def hold_if_idle(run_dir: Path, create: bool = True) -> Iterator[bool]:
    """Lock a run directory that no engine holds, for as long as the block runs (so none
    can claim it meanwhile): True, or False when a live engine holds it. For `swarmdeck
    clean`, which must never remove a live run's directory. Without `create`, a directory
    with no lock file is idle as it is (no file made: a dry run changes nothing)."""
    flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    try:
        fd = os.open(run_dir / LOCK_NAME, flags, 0o600)
    except FileNotFoundError:
        yield not create
        return
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


@contextmanager
def claim_run_dir(run_dir: Path) -> Iterator[int]:
    """Create `run_dir` (0700), lock it, and run the block under umask 077; yields the
    umask the process had, for the processes the engine starts on the user's behalf."""
    run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise RunDirInUseError(
                f"{run_dir} is in use by another engine (pid {holder}); stop it first "
                "(swarmdeck stop) or choose another --run-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        previous = os.umask(PRIVATE_UMASK)
        try:
            yield previous
        finally:
            os.umask(previous)
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock
