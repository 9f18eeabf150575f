"""The real `swarmdeck` command against a real `swarmdeck serve` process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING

from tests.remote_support import ROOT, short_dir

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

SWARMDECK = [sys.executable, "-m", "tui.cli"]


class Served:
    """A served deck and a way to run the CLI against it (same runtime directory)."""

    def __init__(self, env: dict[str, str], process: subprocess.Popen[str]) -> None:
        self.env, self.process = env, process

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [*SWARMDECK, *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=50
        )
        if check:
            assert out.returncode == 0, (args, out.stdout, out.stderr)
        return out

    def until(self, check: Callable[[], bool], tries: int = 30) -> None:
        """Ask again (each ask is a whole CLI run) until `check` holds; bounded in count."""
        for _ in range(tries):
            if check():
                return
            time.sleep(0.2)
        raise AssertionError("never happened")


@contextmanager
def served(deck_text: str, directory: Path, name: str = "svc") -> Iterator[Served]:
    """`swarmdeck serve` on `deck_text` as deck `name`; SIGTERM at the end (every session
    is stopped before it exits)."""
    deck = directory / f"{name}.toml"
    deck.write_text(deck_text)
    with short_dir() as runtime:
        env = {**os.environ, "SWARMDECK_RUNTIME_DIR": str(runtime)}
        args = ("serve", str(deck), "--run-dir", str(directory / "run"))
        process = subprocess.Popen(
            [*SWARMDECK, *args], cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert f"serving {name} on" in line, line
            yield Served(env, process)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            process.wait(30)
            assert process.stdout is not None
            process.stdout.close()
