"""`swarmdeck run` in a real terminal (a private tmux server): keys in, screen text out.

The room attaches to a background engine it started; "stop all" ends both."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import tagged_processes
from tests.remote_support import short_dir
from tests.tmux_support import ROOM_DECK as DECK
from tests.tmux_support import SWARMDECK, tmux_server

if TYPE_CHECKING:
    from tests.tmux_support import Tmux


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux"),
]


def row(lines: list[str], name: str) -> str:
    return next((line for line in lines if f"│ {name} " in line), "")


def wait_row(tmux: Tmux, name: str, text: str) -> None:
    tmux.wait_for(lambda lines: text in row(lines, name))


def test_the_room_runs_in_a_real_terminal_and_quits_cleanly(tmp_path: Path) -> None:
    deck = tmp_path / "deck.toml"
    deck.write_text(DECK)
    run = f"{SWARMDECK} run --run-dir {tmp_path / 'run'} {deck}"
    with short_dir() as runtime, tmux_server() as tmux:
        command = f"SWARMDECK_RUNTIME_DIR={runtime} {run}; echo EXITED-$?; sleep 30"
        tmux.start(command, 140, 40)
        tmux.run("resize-window", "-t", "main", "-x", "140", "-y", "40")
        tmux.wait_for(lambda lines: "tick-2" in "\n".join(lines) and "sh$" in "\n".join(lines))
        tmux.keys("p")
        wait_row(tmux, "counter", "paused")
        tmux.wait_for(lambda lines: "PAUSED" in "\n".join(lines))
        tmux.keys("r")
        wait_row(tmux, "counter", "active")
        tmux.keys("j", "Enter")
        time.sleep(0.3)
        tmux.keys("echo typed-$((6*7))", "Enter")
        tmux.wait_for(lambda lines: any("typed-42" in line for line in lines))
        tmux.keys("C-]")
        time.sleep(0.2)
        tmux.keys("k", "t")
        tmux.wait_for(lambda lines: "Terminate counter" in "\n".join(lines))
        tmux.keys("y")
        wait_row(tmux, "counter", "terminated")
        tmux.keys("q")
        tmux.wait_for(lambda lines: "Stop all (s)" in "\n".join(lines))
        tmux.keys("s")  # stop all: the sessions and the background engine
        tmux.wait_for(lambda lines: any("EXITED-0" in line for line in lines), timeout=30)
        deadline = time.monotonic() + 5
        while _left_behind() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _left_behind(), "swarmdeck or its sessions outlived the room"
    assert (tmp_path / "run" / "summary.json").exists()


def _left_behind() -> list[int]:
    """Tagged processes other than the tmux server and the shell waiting in its pane."""
    return [
        p for p in tagged_processes() if not _cmdline(p).startswith(("tmux", "sh -c", "sleep 30"))
    ]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
