"""The tmux model in real terminals: `swarmdeck run` starts a background engine and
attaches; control rooms come and go (even by SIGKILL), sessions stay; viewers watch."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.remote_support import short_dir
from tests.tmux_support import ROOM_DECK as DECK
from tests.tmux_support import SWARMDECK, tmux_server

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.tmux_support import Tmux


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux"),
]


class Room:
    """A private tmux server and runtime directory; every engine started is stopped."""

    def __init__(self, tmux: Tmux, runtime: Path, deck: Path) -> None:
        self.tmux, self.runtime, self.deck = tmux, runtime, deck
        self.env = {**os.environ, "SWARMDECK_RUNTIME_DIR": str(runtime)}

    def open(self, name: str, args: str) -> None:
        """A window running `swarmdeck ARGS` (then its exit status)."""
        command = f"SWARMDECK_RUNTIME_DIR={self.runtime} {SWARMDECK} {args}; echo EXITED-$?"
        self.tmux.start(f"{command}; sleep 60", 140, 40, name=name)

    def shows(self, name: str, *texts: str, timeout: float = 20) -> list[str]:
        def check(lines: list[str]) -> bool:
            return all(text in "\n".join(lines) for text in texts)

        return self.tmux.wait_for(check, timeout=timeout, target=name)

    def swarmdeck(self, *args: str) -> str:
        done = subprocess.run(
            [SWARMDECK, *args], env=self.env, capture_output=True, text=True, timeout=60
        )
        return done.stdout

    def stop_all(self) -> None:
        for line in self.swarmdeck("ls").splitlines()[1:]:
            if line.strip() and not line.startswith(" "):
                self.swarmdeck("stop", line.split()[0])


@pytest.fixture
def room(tmp_path: Path) -> Iterator[Room]:
    (tmp_path / "deck.toml").write_text(DECK)
    with short_dir() as runtime, tmux_server() as tmux:
        room = Room(tmux, runtime, tmp_path / "deck.toml")
        try:
            yield room
        finally:
            room.stop_all()


def ui_pid(room: Room, window: str) -> int:
    """The swarmdeck process running in a window (the child of its `sh -c`)."""
    shell = room.tmux.run("display-message", "-p", "-t", window, "#{pane_pid}").strip()
    children = Path(f"/proc/{shell}/task/{shell}/children").read_text().split()
    return int(children[0])


def start_run(room: Room) -> None:
    room.open("first", f"run {room.deck}")
    room.shows("first", "tick-2", "sh$")


def type_in_shell(room: Room, window: str, text: str, *, typing: bool = True) -> None:
    """Select the shell, enter it, and type a line: once the pane says it is typing, so a
    loaded machine never sends the line to the command layer (a viewer never gets there)."""
    room.tmux.keys("j", "Enter", target=window)
    if typing:
        room.shows(window, "Ctrl-] leaves")
    else:
        time.sleep(0.3)
    room.tmux.keys(text, "Enter", target=window)


def test_killing_the_room_or_its_terminal_leaves_sessions_running_and_reattach_shows_them(
    room: Room,
) -> None:
    start_run(room)
    type_in_shell(room, "first", "echo before-$((6*7))")
    room.shows("first", "before-42")
    os.kill(ui_pid(room, "first"), signal.SIGKILL)
    room.shows("first", "EXITED-137")
    listing = room.swarmdeck("attach", "deck", "--headless")
    assert "== counter [active]" in listing
    assert "== shell [active]" in listing
    room.open("again", "attach deck")
    room.shows("again", "before-42", "sh$")
    room.tmux.keys("q", target="again")
    room.shows("again", "Detach (d)", "Stop all (s)", "Cancel")
    room.tmux.keys("d", target="again")
    room.shows("again", "detached from", "swarmdeck attach deck-", "EXITED-0")
    room.open("hung-up", "attach deck")
    room.shows("hung-up", "before-42")
    room.tmux.run("kill-session", "-t", "hung-up")  # the terminal goes away: SIGHUP
    time.sleep(0.5)
    listing = room.swarmdeck("attach", "deck", "--headless")
    assert "== counter [active]" in listing
    assert "before-42" in listing


def test_two_attached_rooms_see_the_same_output(room: Room) -> None:
    start_run(room)
    room.open("second", "attach deck")
    room.shows("second", "tick-", "sh$")
    type_in_shell(room, "first", "echo typed-$((6*7))")
    room.shows("first", "typed-42")
    room.shows("second", "typed-42")
    room.tmux.keys("C-]", target="first")
    room.tmux.wait_for(lambda lines: "Ctrl-] leaves" not in "\n".join(lines), target="first")
    room.tmux.keys("q", target="first")
    room.shows("first", "Stop all (s)")
    room.tmux.keys("s", target="first")
    room.shows("first", "EXITED-0", timeout=30)
    room.shows("second", "the engine went away", "EXITED-1")


def test_a_viewer_room_is_read_only_and_its_keys_change_nothing(room: Room) -> None:
    start_run(room)
    room.open("viewer", "attach deck --viewer")
    room.shows("viewer", "READ-ONLY", "tick-", "sh$")
    room.tmux.keys("p", target="viewer")
    room.shows("viewer", "read-only viewer")
    type_in_shell(room, "viewer", "echo nope-$((6*7))", typing=False)
    time.sleep(0.5)
    assert "nope-42" not in "\n".join(room.tmux.screen("first"))
    listing = room.swarmdeck("attach", "deck", "--headless")
    assert "== counter [active]" in listing
    assert "nope-42" not in listing
    room.tmux.keys("q", target="viewer")
    room.shows("viewer", "detached from", "EXITED-0")
    assert "== counter [active]" in room.swarmdeck("attach", "deck", "--headless")
