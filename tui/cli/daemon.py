"""The background engine behind `swarmdeck run` (the tmux model).

`swarmdeck run FILE` attaches to the engine already serving FILE, or starts
`swarmdeck serve FILE` detached: its own session (start_new_session), no terminal,
output to `RUN_DIR/service.log`. So neither the UI's death (even SIGKILL) nor its
terminal's hang-up reaches the engine or its sessions; `swarmdeck stop` ends it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING

import anyio

from engine import SwarmdeckError, default_run_dir
from engine.remote import runtime_root, serving

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

    from engine import DeckSpec
    from engine.remote import Registration, RemoteEngine

LOG_NAME = "service.log"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 120.0


def find_or_start(
    deck: DeckSpec,
    run_dir: Path | None,
    runs: Path | None = None,
    sessions: Sequence[str] = (),
) -> tuple[Registration, bool, list[Registration]]:
    """The engine serving `deck` (or `run_dir`, when given), else a new one started in
    the background (in `run_dir`, else a new directory under `runs`); the flag says
    whether it was started here, serving only `sessions` (and their dependencies) when
    named. A deck's engine whose run is over is left as it is
    (returned last) and a new run started: `run` means run it."""
    with _deck_lock(deck):
        found = serving(run_dir=run_dir, deck_path=deck.path)
        over = [] if run_dir is not None else [e for e in found if e.finished]
        found = [e for e in found if e not in over]
        if len(found) > 1:
            dirs = ", ".join(e.run_dir for e in found)
            raise SwarmdeckError(
                f"several engines serve {deck.path} ({dirs}): swarmdeck attach RUN"
            )
        if found:
            return found[0], False, over
        run_dir = run_dir or default_run_dir(deck, root=runs)
        return start_service(deck, run_dir.absolute(), sessions), True, over


@contextmanager
def _deck_lock(deck: DeckSpec) -> Iterator[None]:
    """One `swarmdeck run` of a deck at a time looks for its engine and starts it if
    there is none: two started together would both find none and start two engines."""
    digest = hashlib.sha256(os.fsencode(deck.path.absolute())).hexdigest()[:16]
    fd = os.open(runtime_root() / f"start-{digest}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released by close, or by the process's end
        yield
    finally:
        os.close(fd)


def start_service(deck: DeckSpec, run_dir: Path, sessions: Sequence[str] = ()) -> Registration:
    """Start `swarmdeck serve` detached and wait until its control socket is registered."""
    run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # private: engine/rundir.py
    log_path = run_dir / LOG_NAME
    from tui.cli.log_setup import forwarded

    command = [sys.executable, "-m", "tui.cli", *forwarded(), "serve", str(deck.path.absolute()),
               *sessions]  # fmt: skip
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "ab") as log:
        service = subprocess.Popen(
            [*command, "--run-dir", str(run_dir)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # no controlling terminal: a hang-up never reaches it
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        found = serving(run_dir=run_dir)
        if found:
            return found[0]
        if service.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise SwarmdeckError(f"the engine exited ({service.returncode}):\n{tail}")
        time.sleep(0.05)
    service.terminate()
    raise SwarmdeckError(f"the engine did not start within {START_TIMEOUT:.0f} s; see {log_path}")


async def shutdown_and_wait(remote: RemoteEngine) -> None:
    """Ask the served engine to stop every session and exit; return once its process has
    (the process that answered hello, not whatever the registry says)."""
    try:
        pidfd = os.pidfd_open(remote.server_pid)  # opened first: the pid cannot be reused
    except ProcessLookupError:
        pidfd = None
    await remote.shutdown()
    if pidfd is not None:
        try:
            with anyio.fail_after(STOP_TIMEOUT):
                await anyio.wait_readable(pidfd)  # a pidfd turns readable when it exits
        finally:
            os.close(pidfd)
