"""`serve --ssh` with a real OpenSSH client in a tmux pane: roles, refusals, hang-up.

The child the server spawns is `swarmdeck attach --role ROLE` (the control room). The
test watches the engine through its own control connection and the child's PTY from
/proc, so what it checks is what the engine and the kernel did, not how it was drawn.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from typing import TYPE_CHECKING, TypeVar

import anyio
import anyio.to_thread
import pytest

from engine.events import ClientAttached, CommandRefused
from engine.remote.remote_engine import open_remote_engine
from engine.remote.remote_errors import NotPermittedError
from engine.states import SessionState as S
from engine.terminals.pty import get_winsize
from tests.remote_support import eventually, screen_text
from tests.ssh_support import ssh_served
from tests.tmux_support import tmux_server
from tui.ssh.session import NEEDS_TERMINAL, NO_COMMANDS
from tui.ssh.ssh_server import PENDING_LOGINS

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from anyio.streams.memory import MemoryObjectReceiveStream

    from engine.events import Event
    from tests.ssh_support import SSHServed
    from tests.tmux_support import Tmux

T = TypeVar("T")
pytestmark = [pytest.mark.anyio, pytest.mark.skipif(not os.path.exists("/usr/bin/ssh"),
              reason="needs the OpenSSH client (scripts/check installs it)")]  # fmt: skip


@pytest.fixture
def served(tmp_path: Path) -> Iterator[SSHServed]:
    with ssh_served(tmp_path) as served:
        yield served


async def _shows(tmux: Tmux, *needles: str) -> list[str]:
    def check(lines: list[str]) -> bool:
        return all(any(n.lower() in line.lower() for line in lines) for n in needles)

    return await anyio.to_thread.run_sync(lambda: tmux.wait_for(check, timeout=20))


def _connect(tmux: Tmux, served: SSHServed, key: str, *options: str) -> None:
    command = [*served.ssh(key, "-tt", *options), "127.0.0.1"]
    tmux.start(subprocess.list2cmdline(command), 100, 30)


def _child_pid(served: SSHServed, role: str) -> int:
    started = [e for e in served.audit() if e["event"] == "child-started" and e["role"] == role]
    return int(started[-1]["pid"])


def _pty_size(pid: int) -> tuple[int, int]:
    """(cols, rows) of the terminal the child's stdin is."""
    fd = os.open(os.readlink(f"/proc/{pid}/fd/0"), os.O_RDONLY | os.O_NOCTTY)
    try:
        return get_winsize(fd)
    finally:
        os.close(fd)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_an_operator_over_ssh_pauses_and_resumes_and_resizes_reach_its_terminal(
    served: SSHServed,
) -> None:
    async with open_remote_engine(served.socket, "viewer", client="observer") as engine:
        await eventually(lambda: engine.session_info("survivor").state is S.ACTIVE)
        with engine.subscribe() as events, tmux_server() as tmux:
            _connect(tmux, served, "operator")
            await _shows(tmux, "survivor", "still-here")
            assert await _child_role(events) == "operator"
            tmux.keys("p")
            await eventually(lambda: engine.session_info("survivor").state is S.PAUSED)
            tmux.keys("r")
            await eventually(lambda: engine.session_info("survivor").state is S.ACTIVE)
            child = _child_pid(served, "operator")
            assert _pty_size(child) == (100, 30)
            tmux.run("resize-window", "-t", "main", "-x", "90", "-y", "25")
            await eventually(lambda: _pty_size(child) == (90, 25))
            pane = int(tmux.run("display-message", "-p", "-t", "main", "#{pane_pid}"))
            os.kill(pane, signal.SIGKILL)  # the ssh client dies without a goodbye
            await eventually(lambda: _gone(child))
        await anyio.sleep(0.5)
        assert engine.session_info("survivor").state is S.ACTIVE
    facts = {e["event"] for e in served.audit()}
    assert {"resize", "disconnect", "child-exited"} <= facts
    connect = next(e for e in served.audit() if e["event"] == "connect")
    assert (connect["role"], connect["comment"]) == ("operator", "operator")
    assert connect["fingerprint"].startswith("SHA256:")


async def _child_role(events: MemoryObjectReceiveStream[Event]) -> str:
    """The role the SSH child said hello with, as the engine recorded it."""
    with anyio.fail_after(20):
        async for event in events:
            if isinstance(event, ClientAttached) and event.name != "observer":
                return event.role
    raise AssertionError("no client attached")


async def test_a_viewer_over_ssh_is_attached_read_only_and_nothing_it_does_changes_a_session(
    served: SSHServed,
) -> None:
    async with open_remote_engine(served.socket, "viewer", client="observer") as engine:
        await eventually(lambda: engine.session_info("survivor").state is S.ACTIVE)
        with engine.subscribe() as events, tmux_server() as tmux:
            _connect(tmux, served, "viewer", "-o", "SetEnv=SWARMDECK_ROLE=operator")  # no use
            await _shows(tmux, "still-here", "read-only")
            role = await _child_role(events)
            assert role == "viewer"
            tmux.keys("p", "t", "Enter", "x", "y", "Enter")
            await anyio.sleep(1)
            assert engine.session_info("survivor").state is S.ACTIVE
            async with open_remote_engine(served.socket, role, client="as the child") as same:
                with pytest.raises(NotPermittedError):
                    await same.pause("survivor")  # what a modified child would get
            refused = await _next(events, CommandRefused)
        assert (refused.role, refused.command, refused.code) == ("viewer", "pause", "not-permitted")
        assert engine.session_info("survivor").state is S.ACTIVE
        assert "still-here" in screen_text(engine, "survivor")


async def _next(events: MemoryObjectReceiveStream[Event], kind: type[T]) -> T:
    with anyio.fail_after(10):
        async for event in events:
            if isinstance(event, kind):
                return event
    raise AssertionError(f"no {kind.__name__}")


async def test_unknown_keys_commands_forwarding_and_sessions_without_a_terminal_are_refused(
    served: SSHServed,
) -> None:
    async def ssh(key: str, *args: str) -> subprocess.CompletedProcess[bytes]:
        command = served.ssh(key, *args)
        return await anyio.run_process(command, stdin=subprocess.DEVNULL, check=False)

    stranger = await ssh("stranger", "-tt", "127.0.0.1")
    assert stranger.returncode == 255
    assert b"Permission denied (publickey)." in stranger.stderr  # the only method offered
    no_pty = await ssh("operator", "-T", "127.0.0.1")
    assert (no_pty.returncode, no_pty.stderr.decode().strip()) == (1, NEEDS_TERMINAL)
    command = await ssh("operator", "-tt", "127.0.0.1", "cat /etc/passwd")
    assert command.returncode == 1
    assert NO_COMMANDS in command.stderr.decode()
    sftp = await ssh("operator", "-s", "127.0.0.1", "sftp")
    forward = await ssh("operator", "-W", "127.0.0.1:9", "127.0.0.1")
    assert sftp.returncode != 0
    assert forward.returncode != 0
    reasons = [e.get("reason", "") for e in served.audit() if e["event"] == "refused"]
    assert reasons[0] == "unknown key"
    assert reasons[1:] == [
        "session without a PTY",
        "exec request: cat /etc/passwd",
        "subsystem 'sftp' (no SFTP/SCP)",
        "port forwarding to 127.0.0.1:9",
    ]
    assert not any(e["event"] == "child-started" for e in served.audit())


async def _second_client_turned_away(tmux: Tmux, served: SSHServed) -> None:
    """With --ssh-max-clients 1: a viewer gets in, then an operator is refused. The viewer
    keeps pressing a harmless key from its login on, so a short --ssh-idle-timeout cannot end
    it while its room starts or the second login is slow (a loaded machine)."""

    async def keep_busy() -> None:
        while True:
            tmux.keys("j")
            await anyio.sleep(0.3)

    _connect(tmux, served, "viewer")
    second = served.ssh("operator", "-tt", "127.0.0.1")
    async with anyio.create_task_group() as tg:
        tg.start_soon(keep_busy)
        await _shows(tmux, "still-here")
        turned = await anyio.run_process(second, stdin=subprocess.DEVNULL, check=False)
        tg.cancel_scope.cancel()
    assert turned.returncode == 255
    assert b"too many clients" in turned.stderr


async def test_clients_beyond_the_limit_are_turned_away_and_idle_ones_disconnected(
    tmp_path: Path,
) -> None:
    limits = ("--ssh-max-clients", "1", "--ssh-idle-timeout", "2s")
    with ssh_served(tmp_path, *limits) as served, tmux_server() as tmux:
        await _second_client_turned_away(tmux, served)
        await eventually(lambda: any(e["event"] == "idle-timeout" for e in served.audit()))
        child = _child_pid(served, "viewer")
        await eventually(lambda: _gone(child))
    events = [(e["event"], e.get("reason", "")) for e in served.audit()]
    assert ("refused", "too many clients (limit 1)") in events
    assert ("idle-timeout", "") in events


async def test_connections_that_never_log_in_do_not_keep_a_client_out(tmp_path: Path) -> None:
    """Only logged-in clients count towards --ssh-max-clients: idle TCP connections (a
    scanner, a stuck client) wait out their login timeout without locking users out."""
    with ssh_served(tmp_path, "--ssh-max-clients", "1") as served, tmux_server() as tmux:
        idle = [socket.create_connection(("127.0.0.1", served.port)) for _ in range(3)]
        try:
            await _second_client_turned_away(tmux, served)
        finally:
            for sock in idle:
                sock.close()
    events = [(e["event"], e.get("reason", "")) for e in served.audit()]
    assert ("refused", "too many clients (limit 1)") in events
    assert [e for e, _ in events].count("connect") == 1


async def test_a_flood_of_connections_logging_in_is_cut_off(tmp_path: Path) -> None:
    with ssh_served(tmp_path) as served:
        idle = [socket.create_connection(("127.0.0.1", served.port)) for _ in range(PENDING_LOGINS)]
        try:
            extra = socket.create_connection(("127.0.0.1", served.port))
            extra.settimeout(10)
            with extra:
                while extra.recv(4096):  # the server's banner, perhaps, then the end
                    pass
        finally:
            for sock in idle:
                sock.close()
    reason = f"too many connections logging in ({PENDING_LOGINS})"
    assert ("refused", reason) in [(e["event"], e.get("reason", "")) for e in served.audit()]
