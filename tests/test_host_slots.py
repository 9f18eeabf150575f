"""Each [[host]]'s slots in the scheduler (docs/scheduling.md, "Places"), over real sshds.

Sessions meet at marker-file barriers (the remote jobs run on this machine, as this user,
through a loopback sshd), never by timing: a session that could not run at the same time
as another gives up after a generous deadline and fails the test by its exit status.
"""

from __future__ import annotations

import json
import os
import socket
from typing import TYPE_CHECKING

import anyio
import pytest

from engine.commands import StartSession
from engine.engine import open_engine
from engine.states import SessionState
from tests.sshd_support import running_sshd
from tests.support import make_deck, running, wait_state, wait_text

if TYPE_CHECKING:
    from pathlib import Path

    from engine.engine import Engine
    from tests.sshd_support import Sshd

pytestmark = pytest.mark.anyio
S = SessionState
DEADLINE = 60.0
TOKEN = os.environ["SWARMDECK_TEST_TOKEN"]
FINAL = (S.COMPLETED, S.FAILED, S.LOST, S.TERMINATED, S.SKIPPED)
ONE_LOCAL = "size = 1\nwarm = 1"


def host_table(sshd: Sshd, name: str, size: int, address: str | None = None, warm: int = 0) -> str:
    return (
        f'[[host]]\nname = "{name}"\nssh = "{address or sshd.address}"\n'
        f'identity = "{sshd.identity}"\nknown_hosts = "{sshd.known_hosts}"\nkeepalive = 1.0\n'
        f"pool = {{ size = {size}, warm = {warm} }}\n"
    )


def session(name: str, command: str, host: str | None, extra: str = "") -> str:
    where = f"host = {host}\n" if host else ""
    return (
        f'[[session]]\nname = "{name}"\ncommand = "{command}"\n{where}'
        f'env = {{ SWARMDECK_TEST_TOKEN = "{TOKEN}" }}\n{extra}\n'
    )


def barrier(directory: Path, count: int, mark: str, release: Path) -> str:
    """Leave `mark` in `directory`, wait (30 s at most) for the test's `release` file, and
    exit 0 only if `count` marks were there by then (they all ran at once)."""
    seen = f"$(ls {directory} | wc -l)"
    return (
        f"touch {directory}/{mark}; i=0; while [ ! -e {release} ] && [ $i -lt 300 ]; "
        f"do sleep 0.1; i=$((i+1)); done; [ {seen} -ge {count} ] && echo met"
    )


def wait_for(directory: Path, mark: str) -> str:
    """Wait (30 s at most) for `mark` in `directory`: exit 0 only if it came."""
    return (
        f"i=0; while [ ! -e {directory}/{mark} ] && [ $i -lt 300 ]; do sleep 0.1; "
        f"i=$((i+1)); done; [ -e {directory}/{mark} ] && echo came"
    )


async def wait_final(engine: Engine, *names: str) -> None:
    for name in names:
        await wait_state(engine, name, *FINAL, timeout=DEADLINE)


def closed_port() -> int:
    """A loopback port nothing listens on (a host that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_a_host_of_size_4_runs_4_sessions_at_once_with_a_local_pool_of_1(
    sshd: Sshd, tmp_path: Path
) -> None:
    meet, release = tmp_path / "meet", tmp_path / "release"
    meet.mkdir()
    command = barrier(meet, 4, "$SWARMDECK_REPLICA", release)
    work = session("w", command, '"box1"', "replicas = 4")
    names = [f"w#{i}" for i in range(1, 5)]
    async with running(tmp_path, host_table(sshd, "box1", 4) + work, ONE_LOCAL) as engine:
        with anyio.fail_after(DEADLINE):
            while len(os.listdir(meet)) < 4:  # all 4 at once (the local pool holds 1)
                await anyio.sleep(0.05)
        [busy] = engine.host_statistics()
        release.touch()
        await wait_final(engine, *names)
        states = [engine.session_info(name).state for name in names]
        with anyio.fail_after(DEADLINE):
            await engine.wait_finished()
    assert states == [S.COMPLETED] * 4  # each saw the 4 marks: they ran at once
    assert (busy.slots, busy.slots_in_use) == (4, 4)
    [host] = json.loads((tmp_path / "run" / "summary.json").read_text())["hosts"]
    assert (host["host"], host["slots"], host["slots_in_use"]) == ("box1", 4, 0)


async def test_a_session_waiting_for_a_full_host_does_not_hold_back_a_local_one(
    sshd: Sshd, tmp_path: Path
) -> None:
    """`first` holds box1's one slot until `local` has run; `second` waits for box1 ahead
    of `local` in file order, and `local` starts on this machine meanwhile."""
    marks = tmp_path / "marks"
    marks.mkdir()
    body = (
        host_table(sshd, "box1", 1)
        + session("first", wait_for(marks, "local"), '"box1"')
        + session("second", "echo second", '"box1"')
        + session("local", f"touch {marks}/local", None)
    )
    async with running(tmp_path, body, ONE_LOCAL) as engine:
        await wait_final(engine, "first", "second", "local")
        infos = {name: engine.session_info(name) for name in ("first", "second", "local")}
    assert [info.state for info in infos.values()] == [S.COMPLETED] * 3
    local, second = infos["local"].started_at, infos["second"].started_at
    assert local is not None
    assert second is not None
    assert local < second  # it overtook the session queued for the full host


async def test_a_session_starts_on_the_least_loaded_host_of_its_list(
    sshd: Sshd, tmp_path: Path
) -> None:
    """Round-robin at load time would put `pick` (replica 1, attempt 1) on box1, the
    first of its list; box1 is busy when it starts, box2 is not."""
    with running_sshd(tmp_path / "second") as other:
        body = (
            host_table(sshd, "box1", 2)
            + host_table(other, "box2", 2)
            + session("busy", "echo up; sleep 600", '"box1"')
            + session(
                "pick",
                "echo port:${SSH_CONNECTION##* }",
                '["box1", "box2"]',
                'depends_on = [{ name = "busy", condition = "started" }]',
            )
        )
        async with running(tmp_path, body) as engine:
            await wait_state(engine, "pick", *FINAL, timeout=DEADLINE)
            info = engine.session_info("pick")
            host = engine.sessions["pick"].host
            await wait_text(engine, "pick", f"port:{other.port}", timeout=DEADLINE)
            await engine.sessions["busy"].terminate()
    assert info.state is S.COMPLETED
    assert host == "box2"


async def test_a_down_host_of_the_list_is_skipped(sshd: Sshd, tmp_path: Path) -> None:
    """`dead` refused its connection at start (warm = 1): `s`, for which it comes first,
    runs on box1 instead of failing there."""
    dead = host_table(sshd, "dead", 2, f"{sshd.user}@127.0.0.1:{closed_port()}", warm=1)
    body = (
        dead
        + host_table(sshd, "box1", 2)
        + session("s", "echo ran", '["dead", "box1"]', "autostart = false")
    )
    async with running(tmp_path, body) as engine:
        with anyio.fail_after(DEADLINE):
            while engine.host_statistics()[0].failures < 1:
                await anyio.sleep(0.05)
        await engine.run(StartSession(session="s"))
        await wait_state(engine, "s", *FINAL, timeout=DEADLINE)
        info = engine.session_info("s")
        host = engine.sessions["s"].host
    assert (info.state, len(info.attempts)) == (S.COMPLETED, 1)
    assert host == "box1"


async def test_a_host_that_dropped_takes_sessions_again_once_it_is_back(
    sshd: Sshd, tmp_path: Path
) -> None:
    """box1's connection drops (its sshd still listens): `later`, whose other host is
    full, waits rather than going to a down host, and starts on box1 once the engine has
    connected to it again in the background."""
    with running_sshd(tmp_path / "second") as other:
        body = (
            host_table(sshd, "box1", 1)
            + host_table(other, "box2", 1)
            + session("gone", "echo up; sleep 600", '"box1"')
            + session("hold", "echo up; sleep 600", '"box2"')
            + session("later", "echo ran", '["box2", "box1"]', "autostart = false")
        )
        async with running(tmp_path, body) as engine:
            await wait_text(engine, "gone", "up", timeout=DEADLINE)
            await wait_text(engine, "hold", "up", timeout=DEADLINE)
            sshd.drop_connections()
            await wait_state(engine, "gone", *FINAL, timeout=DEADLINE)
            with anyio.fail_after(DEADLINE):
                while engine.host_statistics()[0].drops < 1:  # seen down: connected no more
                    await anyio.sleep(0.05)
            gone = engine.session_info("gone").state
            await engine.run(StartSession(session="later"))
            await wait_state(engine, "later", *FINAL, timeout=DEADLINE)
            info = engine.session_info("later")
            host = engine.sessions["later"].host
            drops = engine.host_statistics()[0].drops
            await engine.sessions["hold"].terminate()
    assert gone is S.LOST
    assert (info.state, host, drops) == (S.COMPLETED, "box1", 1)


async def test_a_session_whose_hosts_are_all_down_fails_naming_one_rather_than_waiting(
    sshd: Sshd, tmp_path: Path
) -> None:
    dead = host_table(sshd, "dead", 2, f"{sshd.user}@127.0.0.1:{closed_port()}", warm=1)
    body = dead + session("s", "echo ran", '["dead"]', "autostart = false")
    async with running(tmp_path, body) as engine:
        with anyio.fail_after(DEADLINE):
            while engine.host_statistics()[0].failures < 1:
                await anyio.sleep(0.05)
        await engine.run(StartSession(session="s"))
        await wait_state(engine, "s", *FINAL, timeout=DEADLINE)
        info = engine.session_info("s")
    assert info.state is S.FAILED
    assert "host 'dead'" in info.reason


async def test_memory_budget_counts_only_this_machines_sessions(sshd: Sshd, tmp_path: Path) -> None:
    """`remote` declares the whole budget but runs on box1, so `local` fits beside it."""
    marks = tmp_path / "marks"
    marks.mkdir()
    body = (
        host_table(sshd, "box1", 1)
        + session("remote", wait_for(marks, "local"), '"box1"', 'memory = "1GB"')
        + session("local", f"touch {marks}/local", None, 'memory = "600MB"')
    )
    deck = make_deck(tmp_path, body, "size = 2\nwarm = 1", 'memory_budget = "1GB"')
    async with open_engine(deck, tmp_path / "run") as engine:
        await engine.start_all()
        await wait_final(engine, "remote", "local")
        states = [engine.session_info(name).state for name in ("remote", "local")]
        in_use = engine.scheduler_statistics().memory_in_use
    assert states == [S.COMPLETED, S.COMPLETED]
    assert in_use == 0


async def test_replicas_fill_hosts_of_different_sizes_at_once(sshd: Sshd, tmp_path: Path) -> None:
    """4 replicas over box1 (1 slot) and box2 (3 slots): placed by load when each starts,
    1 and 3, where turns at load time would put 2 on box1 and one of them would wait."""
    meet, release = tmp_path / "meet", tmp_path / "release"
    meet.mkdir()
    command = barrier(meet, 4, "$SWARMDECK_REPLICA", release)
    with running_sshd(tmp_path / "second") as other:
        body = (
            host_table(sshd, "box1", 1)
            + host_table(other, "box2", 3)
            + session("w", command, '["box1", "box2"]', "replicas = 4")
        )
        async with running(tmp_path, body, "size = 4\nwarm = 1") as engine:  # not the bound
            with anyio.fail_after(DEADLINE):
                while len(os.listdir(meet)) < 4:
                    await anyio.sleep(0.05)
            in_use = [h.slots_in_use for h in engine.host_statistics()]
            release.touch()
            await wait_final(engine, *[f"w#{i}" for i in range(1, 5)])
            states = {engine.session_info(f"w#{i}").state for i in range(1, 5)}
    assert in_use == [1, 3]
    assert states == {S.COMPLETED}
