"""Jobs on another machine over SSH, against a real sshd on loopback (tests/sshd_support.py).

Every remote job gets this run's leak-guard token in its environment, so a remote process
left behind fails the test like a local one would.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
import pytest

from engine.deck.host_spec import HostSpec
from engine.errors import HostKeyError, HostLostError, SpawnError, TerminalError
from engine.screen import Screen
from engine.terminals.channel import JobRun, LauncherChannel
from engine.terminals.hosts.host_link import HostLink
from engine.terminals.hosts.remote_launcher import launcher_command, ready_line
from engine.terminals.hosts.remote_terminal import RemoteTerminal
from engine.terminals.procs import process_state
from engine.terminals.terminal import ExitStatus, Job
from tests.sshd_support import keygen

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from tests.sshd_support import Sshd

pytestmark = pytest.mark.anyio
TOKEN = {"SWARMDECK_TEST_TOKEN": os.environ["SWARMDECK_TEST_TOKEN"]}
DEADLINE = 30.0


def host_spec(server: Sshd, **extra: object) -> HostSpec:
    fields: dict[str, object] = {
        "name": "box1",
        "ssh": server.address,
        "identity": str(server.identity),
        "known_hosts": str(server.known_hosts),
        "keepalive": 1.0,
        **extra,
    }
    return HostSpec.model_validate(fields)


def job(script: str, cols: int = 80, rows: int = 24) -> Job:
    return Job(["sh", "-c", script], env=dict(TOKEN), cols=cols, rows=rows)


@asynccontextmanager
async def on_host(spec: HostSpec) -> AsyncIterator[tuple[HostLink, anyio.abc.TaskGroup]]:
    async with anyio.create_task_group() as tg:
        link = HostLink(spec, tg)
        try:
            yield link, tg
        finally:
            await link.aclose()


async def until(check: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within {DEADLINE}s: {what}"
        await anyio.sleep(0.05)


def emulate(screen: Screen) -> Callable[[bytes], None]:
    def sink(data: bytes) -> None:
        screen.feed(data)

    return sink


def remote_state(pid: int) -> str:
    """The job runs on loopback, so its state is readable here (only to check the test)."""
    return process_state(pid)


async def test_a_job_on_a_host_prints_into_the_size_it_was_given(sshd: Sshd) -> None:
    screen = Screen(50, 13, 100)
    async with on_host(host_spec(sshd)) as (link, tg):
        term = RemoteTerminal(link, 50, 13)
        await term.start(job("echo hello; stty size", 50, 13), emulate(screen), tg)
        status = await term.wait()
        await term.aclose()
    assert status == ExitStatus(0)
    text = [line.rstrip() for line in screen.text()]
    assert "hello" in text
    assert "13 50" in text
    assert not any("swarmdeck-pid" in line for line in text)


async def test_a_flood_reaches_the_sink_whole_and_in_order_before_the_exit(sshd: Sshd) -> None:
    """More than PAUSE_AT queued at once: the channel pauses and resumes, nothing is lost."""
    out = bytearray()
    async with on_host(host_spec(sshd)) as (link, tg):
        term = RemoteTerminal(link, 80, 24)
        await term.start(job("stty -onlcr; seq 1 300000"), out.extend, tg)
        assert await term.wait() == ExitStatus(0)
        await term.aclose()
    assert out.split(b"\n")[:-1] == [str(n).encode() for n in range(1, 300001)]


async def test_exit_status_and_signals_come_back_from_the_host(sshd: Sshd) -> None:
    async with on_host(host_spec(sshd)) as (link, tg):
        term = RemoteTerminal(link, 80, 24)
        await term.start(job("exit 3"), lambda _: None, tg)
        assert await term.wait() == ExitStatus(3)
        await term.aclose()
        term = RemoteTerminal(link, 80, 24)
        await term.start(job("kill -s USR1 $$"), lambda _: None, tg)
        assert await term.wait() == ExitStatus(None, signal.SIGUSR1)
        await term.aclose()


async def test_input_reaches_the_job_and_a_resize_reaches_its_pty(sshd: Sshd) -> None:
    out = bytearray()
    async with on_host(host_spec(sshd)) as (link, tg):
        term = RemoteTerminal(link, 80, 24)
        script = "read line; echo got:$line; read _; stty size"
        await term.start(job(script), out.extend, tg)
        await term.write(b"hi there\r")
        await until(lambda: b"got:hi there" in out, "the typed line echoed back")
        term.resize(100, 30)  # SSH keeps the window change ahead of the next keys
        await term.write(b"\r")
        assert await term.wait() == ExitStatus(0)
        await term.aclose()
    assert b"30 100" in out


async def test_pause_resume_and_terminate_reach_the_remote_process_group(sshd: Sshd) -> None:
    out = bytearray()
    async with on_host(host_spec(sshd)) as (link, tg):
        term = RemoteTerminal(link, 80, 24)
        pid = await term.start(job("sleep 600 & wait"), out.extend, tg)
        await term.pause_job()
        await until(lambda: remote_state(pid) == "T", "the job stopped")
        await term.resume_job()
        await until(lambda: remote_state(pid) != "T", "the job running again")
        term.signal_job(signal.SIGTERM)
        status = await term.wait()
        await term.aclose()
    assert status == ExitStatus(None, signal.SIGTERM)


async def test_an_unknown_host_key_is_refused_naming_the_host_and_its_fingerprint(
    sshd: Sshd, tmp_path: Path
) -> None:
    other = tmp_path / "known_hosts"
    key = keygen(tmp_path / "someone_else", "other").split()
    other.write_text(f"[127.0.0.1]:{sshd.port} {key[0]} {key[1]}\n")
    spec = host_spec(sshd, known_hosts=str(other))
    fingerprint = sshd.host_key_fingerprint()
    async with on_host(spec) as (link, tg):
        with pytest.raises(SpawnError) as refused:
            await RemoteTerminal(link, 80, 24).start(job("true"), lambda _: None, tg)
        assert isinstance(refused.value.__cause__, HostKeyError)
        assert link.statistics().failures == 1
    message = str(refused.value)
    assert "host 'box1'" in message
    assert fingerprint in message
    assert str(other) in message


async def test_a_missing_known_hosts_file_means_every_host_key_is_unknown(
    sshd: Sshd, tmp_path: Path
) -> None:
    spec = host_spec(sshd, known_hosts=str(tmp_path / "no_such_file"))
    async with on_host(spec) as (link, tg):
        with pytest.raises(SpawnError) as refused:
            await RemoteTerminal(link, 80, 24).start(job("true"), lambda _: None, tg)
    assert isinstance(refused.value.__cause__, HostKeyError)
    assert sshd.host_key_fingerprint() in str(refused.value)


async def test_a_host_that_drops_mid_run_ends_its_job_as_lost_naming_the_host(
    sshd: Sshd,
) -> None:
    out = bytearray()
    async with on_host(host_spec(sshd)) as (link, tg):
        term = RemoteTerminal(link, 80, 24)
        await term.start(job("echo up; sleep 600"), out.extend, tg)
        await until(lambda: b"up" in out, "the job running")
        assert link.statistics().connected
        assert sshd.drop_connections() > 0
        with anyio.fail_after(DEADLINE), pytest.raises(HostLostError) as lost:
            await term.wait_exit()
        await term.aclose()
        await until(lambda: not link.statistics().connected, "the drop noticed")
        figures = link.statistics()
    assert "host 'box1' lost" in str(lost.value)
    assert term.lost is not None
    assert (figures.drops, figures.channels) == (1, 0)


async def test_a_host_that_stops_answering_is_noticed_by_keepalive_and_nothing_hangs(
    sshd: Sshd,
) -> None:
    """No FIN, no RST: only the keepalive (every second here, three missed) sees it."""
    out = bytearray()
    async with on_host(host_spec(sshd)) as (link, tg):
        term = RemoteTerminal(link, 80, 24)
        await term.start(job("echo up; sleep 600"), out.extend, tg)
        await until(lambda: b"up" in out, "the job running")
        assert sshd.freeze_connections() > 0
        with anyio.fail_after(DEADLINE), pytest.raises(TerminalError) as unpaused:
            await term.pause_job()  # not reported done: the host never got it
        with anyio.fail_after(DEADLINE), pytest.raises(HostLostError) as lost:
            await term.wait_exit()
        await term.aclose()
    assert "SIGSTOP not sent: host 'box1'" in str(unpaused.value)
    assert "host 'box1' lost" in str(lost.value)


async def test_an_unreachable_host_is_retried_only_after_its_backoff(sshd: Sshd) -> None:
    """Nothing listens on the port: the first attempt fails naming the host, the next
    lease within the backoff fails at once without a new attempt."""
    sshd.stop()
    async with on_host(host_spec(sshd)) as (link, tg):
        with pytest.raises(SpawnError) as first:
            await RemoteTerminal(link, 80, 24).start(job("true"), lambda _: None, tg)
        with pytest.raises(SpawnError) as second:
            await RemoteTerminal(link, 80, 24).start(job("true"), lambda _: None, tg)
        figures = link.statistics()
    assert f"host 'box1' ({sshd.user}@127.0.0.1:{sshd.port})" in str(first.value)
    assert "next attempt in" in str(second.value)
    assert (figures.failures, figures.connects, figures.connected) == (1, 0, False)


async def test_the_connection_is_made_again_after_a_drop(sshd: Sshd) -> None:
    async with on_host(host_spec(sshd)) as (link, tg):
        await link.run("true")
        sshd.drop_connections()
        await until(lambda: not link.statistics().connected, "the drop noticed")
        term = RemoteTerminal(link, 80, 24)
        await term.start(job("exit 0"), lambda _: None, tg)
        assert await term.wait() == ExitStatus(0)
        await term.aclose()
        figures = link.statistics()
    assert (figures.connects, figures.drops) == (2, 1)


async def test_channels_wait_for_a_free_one_within_max_channels(sshd: Sshd) -> None:
    """Four jobs on a host allowing three channels: the fourth starts once one ends."""
    async with on_host(host_spec(sshd, max_channels=3, pool={"size": 1, "warm": 0})) as (
        link,
        tg,
    ):
        held = [RemoteTerminal(link, 80, 24) for _ in range(3)]
        for term in held:
            await term.start(job("read _"), lambda _: None, tg)
        assert link.statistics().channels == 3
        last = RemoteTerminal(link, 80, 24)
        started = anyio.Event()

        async def start_last() -> None:
            await last.start(job("exit 0"), lambda _: None, tg)
            started.set()

        tg.start_soon(start_last)
        await anyio.sleep(0.5)
        assert not started.is_set()
        await held[0].write(b"\r")
        assert await held[0].wait() == ExitStatus(0)
        with anyio.fail_after(DEADLINE):
            await started.wait()
        assert await last.wait() == ExitStatus(0)
        for term in held[1:]:
            await term.write(b"\r")
            await term.wait()
        for term in (*held, last):
            await term.aclose()


async def test_the_round_trip_is_measured_while_connected(sshd: Sshd) -> None:
    async with on_host(host_spec(sshd)) as (link, _):
        rtt = await link.round_trip()
        await until(lambda: link.statistics().rtt is not None, "a probe measured")
    assert rtt > 0


async def test_the_unchanged_launcher_runs_a_job_on_a_host_over_a_forwarded_socket(
    sshd: Sshd,
) -> None:
    """The first piece of warm remote terminals: the launcher's source is sent in the
    command, and the engine's LauncherChannel speaks to it over the SSH connection."""
    nonce, out, closed = secrets.token_hex(8), bytearray(), anyio.Event()
    command, path = launcher_command(nonce, b"JOB-END")
    runs: list[JobRun] = []
    async with on_host(host_spec(sshd)) as (link, tg):
        channel = await link.open_pty(command, 80, 24, "xterm-256color", out.extend,
                                      lambda _: closed.set())  # fmt: skip
        await until(lambda: ready_line(nonce) in out, "the bootstrap listening")
        async with link.unix_stream(path) as stream:
            control = LauncherChannel(stream, runs.append, runs.append, runs.append)
            tg.start_soon(control.read)
            with anyio.fail_after(DEADLINE):
                await control.ready.wait()
            run = control.new_run(lambda _: None)
            control.run(run, job("echo from-job; stty size"))
            with anyio.fail_after(DEADLINE):
                await run.exited.wait()
            await until(lambda: b"JOB-END" in out, "the job's end marker")
            await control.aclose()
        channel.close()
        with anyio.fail_after(DEADLINE):
            await closed.wait()
    assert control.launcher_pid is not None
    assert (run.status, run.restored, runs) == (ExitStatus(0), True, [run, run])
    assert b"from-job\r\n24 80\r\nJOB-END" in out
