"""Warm terminals on a host: the launcher on a PTY channel, reused from job to job, and a
pool per host (docs/hosts.md), against a real sshd on loopback (tests/sshd_support.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from engine.errors import SpawnError
from engine.terminals.hosts.remote_pooled import RemotePooledTerminal
from engine.terminals.terminal import ExitStatus
from tests.test_hosts import DEADLINE, host_spec, job, on_host, until

if TYPE_CHECKING:
    from pathlib import Path

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
