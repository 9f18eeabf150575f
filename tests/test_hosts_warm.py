"""Warm terminals on a host: the launcher on a PTY channel, reused from job to job, and a
pool per host (docs/hosts.md), against a real sshd on loopback (tests/sshd_support.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest

from engine.errors import SpawnError
from engine.states import SessionState as S
from engine.terminals.hosts.host_pool import HostPool
from engine.terminals.hosts.remote_pooled import RemotePooledTerminal
from engine.terminals.pool_core import PoolLimits
from engine.terminals.procs import alive, process_state
from engine.terminals.terminal import ExitStatus
from engine.terminals.turns import ReadTurns
from tests.support import running, wait_state, wait_text
from tests.test_hosts import DEADLINE, host_spec, job, on_host, until
from tests.test_hosts_engine import host_table, session

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.sshd_support import Sshd

pytestmark = pytest.mark.anyio


async def run_job(term: RemotePooledTerminal, script: str) -> tuple[ExitStatus, bytes]:
    """One job on the warm terminal: its exit status and exactly its output."""
    out = bytearray()
    with anyio.fail_after(DEADLINE):
        pid = await term.start(job(script), out.extend)
        ended = await term.wait_exit(pid)
        await ended.drained()
    return ended.status, bytes(out)


async def test_jobs_reuse_one_remote_terminal_with_exact_output_and_status(sshd: Sshd) -> None:
    async with on_host(host_spec(sshd)) as (link, tg):
        term = RemotePooledTerminal(link, 80, 24)
        await term.open(tg, "")
        first = await run_job(term, "echo one; printf 'no newline'; exit 3")
        launcher = term.launcher_pid
        second = await run_job(term, "echo two $$; stty size")
        third = await run_job(term, "kill -s TERM $$")
        same = term.launcher_pid == launcher and term.reusable
        await term.aclose()
    assert first == (ExitStatus(3), b"one\r\nno newline")
    pid = second[1].split()[1].decode()
    assert second == (ExitStatus(0), f"two {pid}\r\n24 80\r\n".encode())
    assert third == (ExitStatus(None, 15), b"")
    assert same


async def test_pool_init_runs_once_per_remote_terminal(sshd: Sshd, tmp_path: Path) -> None:
    runs = tmp_path / "init-runs"
    init = f"echo ran >> {runs}; export FROM_INIT=yes"
    async with on_host(host_spec(sshd)) as (link, tg):
        term = RemotePooledTerminal(link, 80, 24)
        await term.open(tg, init)
        outputs = [await run_job(term, "echo $FROM_INIT") for _ in range(2)]
        await term.aclose()
    assert outputs == [(ExitStatus(0), b"yes\r\n")] * 2
    assert runs.read_text() == "ran\n"


async def test_a_failing_init_on_a_host_says_so_with_its_output(sshd: Sshd) -> None:
    async with on_host(host_spec(sshd)) as (link, tg):
        term = RemotePooledTerminal(link, 80, 24)
        with pytest.raises(SpawnError) as failed:
            await term.open(tg, "echo cannot-init; exit 4")
        await until(lambda: link.statistics().channels == 0, "no channel left")
    message = str(failed.value)
    assert "pooled terminal on host 'box1' did not start: pool init failed" in message
    assert "exit 4" in message
    assert "cannot-init" in message


async def test_a_host_without_python3_fails_the_start_saying_so(sshd: Sshd) -> None:
    async with on_host(host_spec(sshd)) as (link, tg):
        term = RemotePooledTerminal(link, 80, 24)
        with pytest.raises(SpawnError) as failed:
            await term.open(tg, "PATH=/nonexistent")  # as if python3 were not installed
        await until(lambda: link.statistics().channels == 0, "no channel left")
    message = str(failed.value)
    assert "on host 'box1' did not start: python3 not found on the host (shell exit 127)" in message


# -- a host's pool ---------------------------------------------------------------------
@asynccontextmanager
async def host_pool(  # the host is loopback: its processes are visible here (for checks)
    server: Sshd,
    size: int = 1,
    warm: int = 1,
    init: str = "",
    idle_check: float | None = None,
    recycle_after: int = 50,
) -> AsyncIterator[tuple[HostPool, list[str]]]:
    """A host's pool, maintained, its warm terminals ready; (pool, recycle reasons)."""
    recycled: list[str] = []
    async with on_host(host_spec(server, pool={"size": size, "warm": warm})) as (link, tg):
        limits = PoolLimits(size, warm, recycle_after, DEADLINE, 300.0, idle_check)
        pool = HostPool(link, limits, tg, ReadTurns(), lambda _, why: recycled.append(why), init)
        tg.start_soon(pool.maintain)
        try:
            with anyio.fail_after(DEADLINE):
                await pool.prewarm()
            yield pool, recycled
        finally:
            await pool.aclose()
            await until(lambda: link.statistics().channels == 0, "every channel closed")


async def lease_job(pool: HostPool, script: str) -> tuple[int | None, ExitStatus, bytes]:
    """Lease a warm terminal, run one job, give it back: (its launcher, status, output)."""
    term = await pool.acquire()
    assert isinstance(term, RemotePooledTerminal)
    try:
        status, out = await run_job(term, script)
    finally:
        pool.release(term)
    return term.launcher_pid, status, out


async def test_a_host_pool_reuses_its_warm_terminal_and_replaces_one_killed_while_idle(
    sshd: Sshd,
) -> None:
    async with host_pool(sshd) as (pool, recycled):
        first = await lease_job(pool, "echo first")
        second = await lease_job(pool, "echo second")
        assert first[0] == second[0]  # the same remote launcher served both
        os.kill(second[0] or 0, signal.SIGKILL)  # the idle warm terminal dies
        await until(lambda: recycled == ["died while idle"], "the dead one dropped")
        await until(lambda: pool.statistics().idle == 1, "a new one warm")
        third = await lease_job(pool, "echo third")
        figures = pool.statistics()
    assert first[1:] == (ExitStatus(0), b"first\r\n")
    assert second[1:] == (ExitStatus(0), b"second\r\n")
    assert third[1:] == (ExitStatus(0), b"third\r\n")
    assert third[0] != first[0]
    assert (figures.created, figures.leases) == (2, 3)


async def test_a_host_pool_recycles_a_warm_terminal_after_recycle_after_jobs(
    sshd: Sshd,
) -> None:
    async with host_pool(sshd, recycle_after=2) as (pool, recycled):
        launchers = [(await lease_job(pool, "true"))[0] for _ in range(3)]
    assert launchers[0] == launchers[1] != launchers[2]
    assert recycled == ["recycle_after reached"]


async def test_a_terminal_dead_when_leased_fails_its_health_check_and_is_replaced(
    sshd: Sshd,
) -> None:
    async with host_pool(sshd) as (pool, recycled):
        term = await pool.acquire()
        assert isinstance(term, RemotePooledTerminal)
        dead = term.launcher_pid
        pool.release(term)
        os.kill(dead or 0, signal.SIGSTOP)  # alive but deaf: only a ping finds it out
        fresh_report = time.monotonic() + 1.5
        await until(lambda: time.monotonic() > fresh_report, "its last report stale")
        launcher, status, out = await lease_job(pool, "echo after")
        await until(lambda: not alive(dead), "the deaf one gone with its channel")
    assert recycled[0] == "unhealthy on lease"
    assert (status, out) == (ExitStatus(0), b"after\r\n")
    assert launcher != dead


async def test_an_idle_warm_terminal_that_stops_answering_is_found_and_replaced(
    sshd: Sshd,
) -> None:
    async with host_pool(sshd, idle_check=0.2) as (pool, recycled):
        term = await pool.acquire()
        assert isinstance(term, RemotePooledTerminal)
        deaf = term.launcher_pid
        pool.release(term)
        os.kill(deaf or 0, signal.SIGSTOP)  # alive, its channels open: only a ping tells
        await until(lambda: recycled == ["unhealthy while idle"], "the deaf one found")
        await until(lambda: pool.statistics().idle == 1, "a new one warm")
        launcher, status, out = await lease_job(pool, "echo fine")
        await until(lambda: not alive(deaf), "the deaf one gone with its channel")
    assert (status, out) == (ExitStatus(0), b"fine\r\n")
    assert launcher != deaf


async def test_a_host_drop_drops_idle_warm_terminals_and_they_come_back_with_it(
    sshd: Sshd,
) -> None:
    async with host_pool(sshd) as (pool, recycled):
        before, *_ = await lease_job(pool, "true")
        sshd.drop_connections()
        await until(lambda: "died while idle" in recycled, "the idle one dropped")
        await until(lambda: pool.statistics().idle == 1, "warm again once reconnected")
        after, status, out = await lease_job(pool, "echo back")
        connects = pool.link.statistics().connects
    assert (status, out) == (ExitStatus(0), b"back\r\n")
    assert after != before
    assert not alive(before)
    assert connects == 2


async def test_closing_a_host_pool_kills_its_jobs_and_leaves_no_launcher_or_channel(
    sshd: Sshd,
) -> None:
    async with host_pool(sshd, size=2, warm=2) as (pool, _):
        busy = await pool.acquire()
        assert isinstance(busy, RemotePooledTerminal)
        idle = await pool.acquire()
        assert isinstance(idle, RemotePooledTerminal)
        pool.release(idle)
        started = anyio.Event()

        def sink(data: bytes) -> None:
            if b"up" in data:
                started.set()

        job_pid = await busy.start(job("trap '' HUP; echo up; sleep 600"), sink)
        with anyio.fail_after(DEADLINE):
            await started.wait()
        nonces = [busy.nonce, idle.nonce]  # name each launcher's socket (and command line)
        launchers = [busy.launcher_pid, idle.launcher_pid]
    found = [await anyio.run_process(["pgrep", "-f", n], check=False) for n in nonces]
    assert [n for n, ran in zip(nonces, found, strict=True) if ran.returncode == 0] == []
    assert not any(alive(pid) for pid in (*launchers, job_pid))


# -- sessions of a deck ----------------------------------------------------------------
def warm_host(server: Sshd, size: int = 1, warm: int = 1) -> str:
    return host_table(server).replace("size = 2, warm = 0", f"size = {size}, warm = {warm}")


def host_processes(server: Sshd) -> list[str]:
    """What runs under the host's sshd besides sshd itself (launchers, jobs): loopback."""
    children: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError, IndexError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = [], list(children.get(server.process.pid, []))
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        with contextlib.suppress(OSError):
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            if comm != "sshd" and process_state(pid) != "Z":
                found.append(f"{pid} {comm}")
    return found


async def test_two_sessions_in_a_row_share_one_warm_remote_terminal_and_init_runs_once(
    sshd: Sshd, tmp_path: Path
) -> None:
    runs = tmp_path / "init-runs"
    local = f'size = 2\nwarm = 0\ninit = "echo ran >> {runs}"'  # nothing warm here
    body = warm_host(sshd) + session("a", "echo a-out:$PPID; exit 3")
    body += session(
        "b", "echo b-out:$PPID", 'depends_on = [{ name = "a", condition = "finished" }]'
    )
    async with running(tmp_path, body, local) as engine:
        for name in ("a", "b"):
            await wait_state(engine, name, S.COMPLETED, S.FAILED, S.LOST, timeout=DEADLINE)
        infos = {name: engine.session_info(name) for name in ("a", "b")}
        screens = {name: "\n".join(engine.sessions[name].screen.text()) for name in ("a", "b")}
    assert (infos["a"].state, infos["a"].exit_code) == (S.FAILED, 3)
    assert (infos["b"].state, infos["b"].exit_code) == (S.COMPLETED, 0)
    parents = {name: screens[name].split(f"{name}-out:")[1].split()[0] for name in ("a", "b")}
    assert parents["a"] == parents["b"]  # the same remote launcher ran both
    assert "b-out" not in screens["a"]
    assert "a-out" not in screens["b"]
    assert runs.read_text() == "ran\n"


async def test_a_fresh_session_on_a_host_gets_a_channel_of_its_own(
    sshd: Sshd, tmp_path: Path
) -> None:
    body = warm_host(sshd, size=2) + session(
        "a", "echo parent:$(cat /proc/$PPID/comm)", 'terminal = "fresh"'
    )
    async with running(tmp_path, body) as engine:
        await wait_state(engine, "a", S.COMPLETED, S.FAILED, S.LOST, timeout=DEADLINE)
        info = engine.session_info("a")
        screen = "\n".join(engine.sessions["a"].screen.text())
    assert (info.state, info.exit_code) == (S.COMPLETED, 0)
    assert "parent:sshd" in screen  # sshd's session, not a launcher


async def test_an_engine_stop_leaves_no_launcher_job_or_connection_on_the_host(
    sshd: Sshd, tmp_path: Path
) -> None:
    deaf = "trap '' HUP TERM INT; echo up; sleep 600"  # only SIGKILL ends it
    body = warm_host(sshd, size=2, warm=2) + session("a", deaf)
    async with running(tmp_path, body) as engine:
        await wait_text(engine, "a", "up", timeout=DEADLINE)
        with anyio.fail_after(DEADLINE):  # the busy one and the idle one
            while len([p for p in host_processes(sshd) if "python3" in p]) < 2:
                await anyio.sleep(0.05)
    with anyio.fail_after(DEADLINE):
        while sshd.connection_pids() or host_processes(sshd):
            await anyio.sleep(0.05)


async def test_terminate_does_not_wait_for_a_wedged_launcher_on_a_host(
    sshd: Sshd, tmp_path: Path
) -> None:
    """Its launcher stopped, a killed job's end is never reported: after REPORT_GRACE the
    terminal is given up (everything on it killed over the connection)."""
    body = warm_host(sshd) + session("a", "echo started; sleep 300", 'stop_grace = "0.2s"')
    async with running(tmp_path, body) as engine:
        await wait_text(engine, "a", "started", timeout=DEADLINE)
        term = engine.sessions["a"].terminal
        assert isinstance(term, RemotePooledTerminal)
        launcher = term.launcher_pid
        os.kill(launcher or 0, signal.SIGSTOP)  # loopback: it will report nothing
        with anyio.fail_after(DEADLINE):
            await engine.terminate("a")
        info = engine.session_info("a")
        gone = not alive(launcher) and not term.reusable
    assert info.state is S.TERMINATED
    assert "unknown" in info.reason
    assert gone
