"""Sessions of a deck on a [[host]], run by the engine over a real sshd (docs/hosts.md)."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import anyio
import pytest

from engine.states import SessionState
from tests.remote_support import attached, eventually, serving
from tests.sshd_support import running_sshd
from tests.support import running, wait_state, wait_text

if TYPE_CHECKING:
    from pathlib import Path

    from tests.sshd_support import Sshd

pytestmark = pytest.mark.anyio
S = SessionState
DEADLINE = 30.0
TOKEN = os.environ["SWARMDECK_TEST_TOKEN"]


def host_table(sshd: Sshd, name: str = "box1") -> str:
    return (
        f'[[host]]\nname = "{name}"\nssh = "{sshd.address}"\nidentity = "{sshd.identity}"\n'
        f'known_hosts = "{sshd.known_hosts}"\nkeepalive = 1.0\npool = {{ size = 2, warm = 0 }}\n'
    )


def session(name: str, command: str, extra: str = "") -> str:
    return (
        f'[[session]]\nname = "{name}"\ncommand = "{command}"\nhost = "box1"\n'
        f'env = {{ SWARMDECK_TEST_TOKEN = "{TOKEN}" }}\n{extra}\n'
    )


async def test_a_session_on_a_host_shows_its_output_in_its_declared_size(
    sshd: Sshd, tmp_path: Path
) -> None:
    body = host_table(sshd) + session("a", "echo hello; stty size", "cols = 50\nrows = 13")
    async with running(tmp_path, body) as engine:
        await wait_state(engine, "a", S.COMPLETED, S.FAILED, S.LOST, timeout=DEADLINE)
        info = engine.session_info("a")
        text = [line.rstrip() for line in engine.sessions["a"].screen.text()]
    assert (info.state, info.exit_code) == (S.COMPLETED, 0)
    assert "hello" in text
    assert "13 50" in text
    cast = (tmp_path / "run" / "sessions" / "a.cast").read_text()
    assert "hello" in cast


async def test_typing_pause_resume_and_terminate_reach_a_session_on_a_host(
    sshd: Sshd, tmp_path: Path
) -> None:
    body = host_table(sshd) + session("a", "read x; echo got:$x; sleep 600")
    async with running(tmp_path, body) as engine:
        await wait_state(engine, "a", S.ACTIVE, timeout=DEADLINE)
        target = engine.sessions["a"]
        await target.send_input(b"typed\r")
        await wait_text(engine, "a", "got:typed", timeout=DEADLINE)
        await target.pause()
        assert engine.session_info("a").state is S.PAUSED
        await target.resume()
        assert engine.session_info("a").state is S.ACTIVE
        await target.terminate()
        info = engine.session_info("a")
    assert info.state is S.TERMINATED
    assert "killed by SIGTERM" in info.reason


async def test_a_session_whose_host_drops_becomes_lost_naming_the_host(
    sshd: Sshd, tmp_path: Path
) -> None:
    body = host_table(sshd) + session("a", "echo up; sleep 600")
    async with running(tmp_path, body) as engine:
        await wait_text(engine, "a", "up", timeout=DEADLINE)
        sshd.drop_connections()
        await wait_state(engine, "a", S.LOST, S.FAILED, S.COMPLETED, timeout=DEADLINE)
        info = engine.session_info("a")
        with anyio.fail_after(DEADLINE):
            await engine.wait_finished()
        figures = engine.scheduler_statistics()
    assert info.state is S.LOST
    assert "host 'box1' lost" in info.reason
    assert (figures.failed, figures.lost) == (1, 1)  # a failure, and which kind
    [host] = json.loads((tmp_path / "run" / "summary.json").read_text())["hosts"]
    assert (host["host"], host["drops"], host["channels"]) == ("box1", 1, 0)


async def test_a_session_on_a_host_with_an_unknown_key_fails_saying_so(
    sshd: Sshd, tmp_path: Path
) -> None:
    (tmp_path / "empty_known_hosts").write_text("")
    table = host_table(sshd).replace(str(sshd.known_hosts), str(tmp_path / "empty_known_hosts"))
    async with running(tmp_path, table + session("a", "true")) as engine:
        await wait_state(engine, "a", S.FAILED, S.COMPLETED, timeout=DEADLINE)
        info = engine.session_info("a")
    assert info.state is S.FAILED
    assert "host 'box1'" in info.reason
    assert sshd.host_key_fingerprint() in info.reason


async def test_a_lost_session_is_retried_on_the_next_of_its_hosts(
    sshd: Sshd, tmp_path: Path
) -> None:
    with running_sshd(tmp_path / "second") as other:
        hosts = host_table(sshd) + host_table(other, "box2")
        spread = session("a", "echo up; sleep 600", "retries = 1\nbackoff = { initial = 0.1 }")
        body = hosts + spread.replace('host = "box1"', 'host = ["box1", "box2"]')
        async with running(tmp_path, body) as engine:
            await wait_text(engine, "a", "up", timeout=DEADLINE)
            sshd.drop_connections()
            await wait_text(engine, "a", "--- attempt 2 ---", timeout=DEADLINE)
            await wait_state(engine, "a", S.ACTIVE, timeout=DEADLINE)
            first = engine.session_info("a").attempts[0]
            await engine.sessions["a"].terminate()
            info = engine.session_info("a")
    assert first.state is S.LOST
    assert "host 'box1' lost" in first.reason
    assert info.state is S.TERMINATED
    assert len(other.connection_pids()) == 0  # its connection closed with the engine


async def test_an_engine_that_stops_kills_its_sessions_on_hosts(sshd: Sshd, tmp_path: Path) -> None:
    """Even a job deaf to the SIGHUP of its PTY closing is killed (its process group, over
    the connection); the leak guard sees remote jobs (they carry the token)."""
    body = host_table(sshd) + session("a", "trap '' HUP; echo up; sleep 600")
    async with running(tmp_path, body) as engine:
        await wait_text(engine, "a", "up", timeout=DEADLINE)
    with anyio.fail_after(DEADLINE):
        while sshd.connection_pids():
            await anyio.sleep(0.05)


async def test_a_host_with_warm_terminals_is_connected_before_any_session_needs_it(
    sshd: Sshd, tmp_path: Path
) -> None:
    table = host_table(sshd).replace("warm = 0", "warm = 1")
    body = table + session("a", "true", "autostart = false")
    async with running(tmp_path, body) as engine:
        with anyio.fail_after(DEADLINE):
            while not engine.host_statistics()[0].connected:
                await anyio.sleep(0.05)
        [figures] = engine.host_statistics()
        state = engine.session_info("a").state
    assert (figures.host, figures.connects, figures.failures) == ("box1", 1, 0)
    assert state is S.QUEUED  # nothing ran there: the connection was made for it


async def test_a_remote_client_sees_each_hosts_figures(sshd: Sshd, tmp_path: Path) -> None:
    body = host_table(sshd) + session("a", "echo up; sleep 600")
    async with running(tmp_path, body) as engine, serving(engine) as server:
        async with attached(server, "viewer") as client:
            await wait_text(engine, "a", "up", timeout=DEADLINE)
            await eventually(  # a warm terminal: its PTY and its launcher's control stream
                lambda: [h.channels for h in client.host_statistics() if h.connected] == [2],
                timeout=DEADLINE,
            )
            [figures] = client.host_statistics()
        await engine.sessions["a"].terminate()
    assert (figures.host, figures.max_channels, figures.failures) == ("box1", 10, 0)
    assert (figures.slots, figures.slots_in_use) == (2, 1)  # its session, of pool.size
