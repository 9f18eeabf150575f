"""A hostile SSH viewer, speaking SSH itself (asyncssh as the client), against a real
`swarmdeck serve --ssh` (issue 20 items 5 and 9): what one connection may cost the
server is bounded, and its room writes nothing on the server's disk."""

from __future__ import annotations

import os
import signal
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import asyncssh
import pytest

from engine.screen import Screen
from engine.terminals.pty import get_winsize
from tests.remote_support import eventually
from tests.ssh_support import ssh_served
from tui.ssh.limits import MAX_COLS, MAX_ROWS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from tests.ssh_support import SSHServed

pytestmark = pytest.mark.anyio
MB = 1 << 20


class RoomView(asyncssh.SSHClientSession[bytes]):
    """The client's terminal, emulated, so the test can read what the room shows."""

    def __init__(self) -> None:
        self.screen = Screen(100, 30)
        self.chan: asyncssh.SSHClientChannel[bytes] | None = None

    def connection_made(self, chan: asyncssh.SSHClientChannel[bytes]) -> None:
        self.chan = chan

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        replies = self.screen.feed(data)
        if replies and self.chan is not None:
            self.chan.write(replies)

    def text(self) -> str:
        return "\n".join(self.screen.text())


@asynccontextmanager
async def _connect(served: SSHServed, key: str = "viewer") -> AsyncIterator[Any]:
    identity = asyncssh.read_private_key(served.keys / key)
    async with asyncssh.connect(
        "127.0.0.1", served.port, username="anyone", client_keys=[identity],
        known_hosts=None, agent_path=None, config=None,
    ) as conn:  # fmt: skip
        yield conn


async def _room(conn: Any, size: tuple[int, int] = (100, 30)) -> tuple[Any, RoomView]:
    chan, view = await conn.create_session(RoomView, term_type="xterm-256color",
                                           term_size=size, encoding=None)  # fmt: skip
    return chan, view


def _children(served: SSHServed) -> list[int]:
    return [int(e["pid"]) for e in served.audit() if e["event"] == "child-started"]


async def _child(served: SSHServed) -> int:
    await eventually(lambda: bool(_children(served)), 20)
    return _children(served)[-1]


def _pty_size(pid: int) -> tuple[int, int]:
    fd = os.open(os.readlink(f"/proc/{pid}/fd/0"), os.O_RDONLY | os.O_NOCTTY)
    try:
        return get_winsize(fd)
    finally:
        os.close(fd)


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        line = next(line for line in f if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


async def test_keystrokes_the_room_does_not_read_are_held_back_at_the_client(
    tmp_path: Path,
) -> None:
    """The room is stopped, so nothing reads its terminal: 64 MB typed at it must wait in
    the client (the SSH window closes), not in the server. Stated bound: +24 MB RSS."""
    with ssh_served(tmp_path) as served:
        async with _connect(served) as conn:
            chan, view = await _room(conn)
            await eventually(lambda: "read-only" in view.text().lower(), 30)
            child = await _child(served)
            os.kill(child, signal.SIGSTOP)
            before = _rss(served.process.pid)
            block = b"x" * MB
            for _ in range(64):
                chan.write(block)
            with anyio.move_on_after(8):  # ends early only if the server took it all
                await eventually(lambda: chan.get_write_buffer_size() == 0, 8)
            grown = _rss(served.process.pid) - before
            assert chan.get_write_buffer_size() > 32 * MB  # still the client's to send
            assert grown < 24 * MB, f"server grew {grown / MB:.0f} MB"
            os.kill(child, signal.SIGCONT)
            chan.close()


async def test_one_connection_opens_one_room_which_counts_against_max_clients(
    tmp_path: Path,
) -> None:
    with ssh_served(tmp_path, "--ssh-max-clients", "1") as served:
        async with _connect(served) as conn:
            _, view = await _room(conn)
            await eventually(lambda: "read-only" in view.text().lower(), 30)
            with pytest.raises(asyncssh.ChannelOpenError):
                await _room(conn)
            assert len(_children(served)) == 1
    reasons = [e.get("reason") for e in served.audit() if e["event"] == "refused"]
    assert "another session on one connection (limit 1)" in reasons


async def test_window_sizes_are_clamped_and_a_flood_of_window_changes_coalesced(
    tmp_path: Path,
) -> None:
    with ssh_served(tmp_path) as served:
        async with _connect(served) as conn:
            chan, _ = await _room(conn, (65535, 65535))
            child = await _child(served)
            assert _pty_size(child) == (MAX_COLS, MAX_ROWS)
            for i in range(2000):
                chan.change_terminal_size(60 + i % 40, 20 + i % 10)
            chan.change_terminal_size(123, 45)
            await eventually(lambda: _pty_size(child) == (123, 45))
            chan.change_terminal_size(65535, 65535)
            await eventually(lambda: _pty_size(child) == (MAX_COLS, MAX_ROWS))
            resizes = [e for e in served.audit() if e["event"] == "resize"]
    assert 1 <= len(resizes) <= 5, len(resizes)
    started = next(e for e in served.audit() if e["event"] == "child-started")
    assert started["size"] == [MAX_COLS, MAX_ROWS]


async def test_a_viewer_cannot_save_a_screenshot_on_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / "Downloads").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))  # the server's ~/Downloads is in here
    monkeypatch.delenv("XDG_DOWNLOAD_DIR", raising=False)
    with ssh_served(tmp_path) as served:
        async with _connect(served) as conn:
            chan, view = await _room(conn)
            await eventually(lambda: "read-only" in view.text().lower(), 30)
            chan.write(b"\x10")  # ctrl+p: the command palette
            await eventually(lambda: "search for commands" in view.text().lower(), 10)
            chan.write(b"Screenshot")
            await eventually(lambda: "Screenshot" in view.text(), 10)
            chan.write(b"\r")
            with anyio.move_on_after(4):  # the palette's screenshot is written in 0.1 s
                await eventually(lambda: any(home.rglob("*.svg")), 4)
    assert list(home.rglob("*.svg")) == []
