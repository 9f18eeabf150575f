"""ChildTerminal: the local PTY each SSH connection's process runs on."""

from __future__ import annotations

import sys
import time

import anyio
import pytest

from tests.remote_support import eventually
from tui.ssh.child import ChildTerminal

pytestmark = pytest.mark.anyio
PROBE = """
import os, termios
mode = termios.tcgetattr(0)
size = os.get_terminal_size(0)
print(os.getsid(0) == os.getpid(), bool(mode[3] & (termios.ICANON | termios.ECHO)),
      f"{size.columns}x{size.lines}", os.environ.get("PROBE"), flush=True)
print(os.read(0, 5).decode(), flush=True)
"""


class _Seen:
    def __init__(self) -> None:
        self.output = bytearray()
        self.status: int | None = None

    def out(self, data: bytes) -> None:
        self.output += data

    def exit(self, status: int) -> None:
        self.status = status


async def test_the_child_leads_its_session_on_a_raw_pty_of_the_clients_size() -> None:
    seen = _Seen()
    argv = [sys.executable, "-c", PROBE]
    child = ChildTerminal(argv, {"PROBE": "yes"}, (91, 27), seen.out, seen.exit)
    await eventually(lambda: b"\n" in seen.output)
    assert seen.output.split(b"\n")[0].strip() == b"True False 91x27 yes"
    child.write(b"hello")
    await eventually(lambda: seen.status is not None)
    assert seen.status == 0
    assert b"hello" in seen.output


async def test_a_child_that_ignores_hang_up_is_killed_after_the_grace() -> None:
    seen = _Seen()
    argv = ["sh", "-c", "trap '' HUP; echo ready; while :; do sleep 0.05; done"]
    child = ChildTerminal(argv, {"PATH": "/usr/bin:/bin"}, (80, 24), seen.out, seen.exit)
    await eventually(lambda: b"ready" in seen.output)
    started = time.monotonic()
    child.hang_up(grace=0.5)
    with anyio.fail_after(10):
        await child.exited.wait()
    assert seen.status == -9
    assert time.monotonic() - started >= 0.4
