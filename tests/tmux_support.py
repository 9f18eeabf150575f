"""A private tmux server (its own -L socket) for end-to-end and fidelity tests."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

SWARMDECK = Path(sys.executable).parent / "swarmdeck"
# A ticking session and an interactive shell: what the tmux end-to-end tests drive.
ROOM_DECK = """
[pool]
size = 3
warm = 0

[[session]]
name = "counter"
command = "i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.3; done"

[[session]]
name = "shell"
command = "PS1='sh$ ' exec bash --norc -i"
stop_signal = "HUP"
stop_grace = "1s"
"""


class Tmux:
    def __init__(self) -> None:
        self.socket = f"swarmdeck-test-{uuid.uuid4().hex[:8]}"

    def run(self, *args: str) -> str:
        cmd = ["tmux", "-L", self.socket, "-f", "/dev/null", *args]
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout

    def start(self, command: str, cols: int, rows: int, name: str = "main") -> None:
        self.run("new-session", "-d", "-s", name, "-x", str(cols), "-y", str(rows), command)
        self.run("set-option", "-t", name, "remain-on-exit", "on")

    def keys(self, *keys: str, target: str = "main") -> None:
        self.run("send-keys", "-t", target, *keys)

    def screen(self, target: str = "main") -> list[str]:
        return self.run("capture-pane", "-p", "-t", target).rstrip("\n").split("\n")

    def wait_for(
        self, check: Callable[[list[str]], bool], timeout: float = 15, target: str = "main"
    ) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            lines = self.screen(target)
            if check(lines):
                return lines
            if time.monotonic() > deadline:
                raise AssertionError("tmux pane never matched:\n" + "\n".join(lines))
            time.sleep(0.1)

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, check=False)


@contextmanager
def tmux_server() -> Iterator[Tmux]:
    server = Tmux()
    try:
        yield server
    finally:
        server.kill()
