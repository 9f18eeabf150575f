"""A real `swarmdeck serve` process for the attacks on serving, files and processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from tests.remote_support import ROOT, short_dir

if TYPE_CHECKING:
    from collections.abc import Iterator


def swarmdeck(*args: str, env: dict[str, str], **kwargs: object) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "tui.cli", *args]
    return subprocess.Popen(command, cwd=ROOT, env=env, text=True, **kwargs)  # type: ignore[call-overload, no-any-return]


@contextmanager
def runtime_env() -> Iterator[dict[str, str]]:
    """The environment of a served engine with its own private runtime directory."""
    with short_dir() as runtime:
        yield {**os.environ, "SWARMDECK_RUNTIME_DIR": str(runtime)}


@contextmanager
def serve(
    deck: Path, run_dir: Path, env: dict[str, str]
) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """`swarmdeck serve DECK --run-dir RUN_DIR` and its control socket, once it says it
    is serving; SIGTERM at the end if the test did not stop it."""
    server = swarmdeck("serve", str(deck), "--run-dir", str(run_dir), env=env,
                       stdout=subprocess.PIPE)  # fmt: skip
    assert server.stdout is not None
    try:
        line = server.stdout.readline()
        assert " on " in line, line
        yield Path(line.rsplit(" on ", 1)[1].strip()), server
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        server.wait(60)
        server.stdout.close()


def alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :].split()[0] != b"Z"
