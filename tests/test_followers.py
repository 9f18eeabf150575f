"""Followers: with every slot taken, the next ready session waits on a busy pooled terminal
and its launcher starts it the moment the running job exits 0. A follower that cannot
start there (its job failed, was paused, or a slot freed elsewhere) goes back to the
queue, and nothing of it (process, recording) is left behind."""

from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING

import anyio
import pytest

from engine.deck.spec import PoolSpec
from engine.errors import TerminalError
from engine.events import SessionStateChanged
from engine.states import SessionState as S
from engine.terminals import launched
from engine.terminals.channel import JOB_TRANSITIONS, JobPhase, JobRun
from engine.terminals.pool import open_pool
from engine.terminals.pooled import PooledTerminal
from engine.terminals.procs import process_state
from engine.terminals.terminal import ExitStatus, Job
from tests.support import wait_state
from tests.test_recorder import read_cast
from tests.test_scheduler import recorded, session, span

if TYPE_CHECKING:
    from pathlib import Path

    from engine.engine import Engine
    from engine.events import Event

pytestmark = pytest.mark.anyio

ONE = "size = 1\nwarm = 1"
TWO = "size = 2\nwarm = 2"


def spawn_reasons(events: list[Event], name: str) -> list[str]:
    return [
        e.reason
        for e in events
        if isinstance(e, SessionStateChanged) and e.session == name and e.new is S.SPAWNING
    ]


async def _until(check: object, timeout: float = 10) -> None:
    with anyio.fail_after(timeout):
        while not check():  # type: ignore[operator]
            await anyio.sleep(0.01)


def _long_then(second: str, command: str) -> str:
    """`long` (30 s), then `second` once it started, then `c` once that one started: with
    two slots, `c` becomes ready when both are taken and follows `long`, the earlier."""
    return (
        session("long", "sleep 30")
        + session(second, command, depends_on='[{ name = "long", condition = "started" }]')
        + session("c", "echo c", depends_on=f'[{{ name = "{second}", condition = "started" }}]')
    )


def _waits_on(engine: Engine, follower: str, host: str) -> bool:
    term = engine.sessions[host].terminal
    handover = engine.sessions[follower].handover
    return term is not None and handover is not None and handover.follow.terminal is term


def _sent(engine: Engine, follower: str) -> bool:
    """Its job is with the launcher, waiting for the job it follows to exit."""
    handover = engine.sessions[follower].handover
    return handover is not None and handover.run is not None


async def test_with_every_slot_taken_the_next_sessions_follow_on_the_same_terminal(
    tmp_path: Path,
) -> None:
    gate_a, gate_b = tmp_path / "a-may-end", tmp_path / "b-may-end"
    body = (
        session("a", f"while [ ! -e {gate_a} ]; do sleep 0.02; done")
        + session("b", f"while [ ! -e {gate_b} ]; do sleep 0.02; done")
        + session("c", "echo c-ran")
    )
    async with recorded(tmp_path, body, pool=ONE) as (engine, events):
        # Each job ends only once the next one follows it: no race with a loaded scheduler.
        await _until(lambda: _waits_on(engine, "b", "a"), timeout=30)
        gate_a.touch()
        await _until(lambda: _waits_on(engine, "c", "b"), timeout=30)
        gate_b.touch()
        assert await engine.wait_finished()
        terminal = engine.sessions["a"].terminal
        assert terminal is not None
        assert engine.sessions["c"].terminal is terminal
        assert engine.pool.statistics().leases == 3
    for name in ("b", "c"):
        assert spawn_reasons(events, name) == [f"following on pooled terminal #{terminal.id}"]
    assert span(engine, "b")[0] >= span(engine, "a")[1]  # one after the other, in order
    assert span(engine, "c")[0] >= span(engine, "b")[1]
    _, events_c = read_cast(tmp_path / "run" / "sessions" / "c.cast")
    assert "".join(text for _, code, text in events_c if code == "o") == "c-ran\r\n"


async def test_a_failed_job_drops_its_follower_which_then_starts_normally(tmp_path: Path) -> None:
    body = session("a", "sleep 0.3; exit 3") + session("b", "echo b-ran")
    async with recorded(tmp_path, body, pool=ONE) as (engine, events):
        await _until(lambda: _sent(engine, "b"))
        assert not await engine.wait_finished()
        b = engine.session_info("b")
        assert (b.state, len(b.attempts)) == (S.COMPLETED, 1)
    assert spawn_reasons(events, "b") == [f"on pooled terminal #{engine.sessions['a'].terminal.id}"]  # type: ignore[union-attr]
    assert span(engine, "b")[0] >= span(engine, "a")[1]
    header, events_b = read_cast(tmp_path / "run" / "sessions" / "b.cast")
    assert header["title"] == "b"
    assert "".join(text for _, code, text in events_b if code == "o") == "b-ran\r\n"


async def test_terminating_a_waiting_follower_means_it_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "b-ran"
    body = session("a", "sleep 1") + session("b", f"touch {marker}")
    async with recorded(tmp_path, body, pool=ONE) as (engine, _):
        await _until(lambda: _sent(engine, "b"))
        figures = engine.scheduler_statistics()
        assert (figures.running, figures.queued, figures.ready) == (1, 1, 1)  # b still waits
        await engine.terminate("b")
        assert engine.sessions["b"].state is S.TERMINATED
        assert "before it started" in engine.sessions["b"].reason
        await engine.wait_finished()
        assert engine.sessions["a"].state is S.COMPLETED
    assert not marker.exists()
    assert not (tmp_path / "run" / "sessions" / "b.cast").exists()
    assert engine.session_info("b").attempts[-1].started_at is None


async def test_a_follower_does_not_wait_behind_a_long_job_when_a_slot_frees(
    tmp_path: Path,
) -> None:
    async with recorded(tmp_path, _long_then("short", "sleep 0.3"), pool=TWO) as (engine, _):
        await _until(lambda: _waits_on(engine, "c", "long"))  # the earliest job gets it
        await wait_state(engine, "c", S.COMPLETED)  # once "short" ended, c ran there
        assert engine.sessions["long"].state is S.ACTIVE
        assert engine.sessions["c"].terminal is engine.sessions["short"].terminal
        await engine.terminate("long")


async def test_pausing_a_job_sends_its_follower_to_another(tmp_path: Path) -> None:
    async with recorded(tmp_path, _long_then("other", "sleep 30"), pool=TWO) as (engine, _):
        await _until(lambda: _waits_on(engine, "c", "long"))
        await engine.pause("long")
        await _until(lambda: _waits_on(engine, "c", "other"))
        assert engine.sessions["c"].state is S.QUEUED
        await engine.terminate("other")  # exits by SIGTERM: c is dropped, then starts
        await wait_state(engine, "c", S.COMPLETED)
        assert engine.sessions["long"].state is S.PAUSED
        await engine.terminate("long")


async def test_a_signal_meant_for_an_ended_job_never_reaches_its_follower() -> None:
    """The launcher starts a follower before the engine has read the exit report: a stop
    or pause aimed at the ended job in that window must not hit the follower."""
    async with open_pool(PoolSpec(size=1, warm=1)) as pool:
        term = await pool.acquire()
        assert isinstance(term, PooledTerminal)
        first = await term.start(Job(["sleep", "0.2"]), lambda _data: None)
        run = term.follow(Job(["sleep", "30"]), lambda _data: None, lambda: None, after=first)
        second = await term.follower_started(run)
        assert second is not None
        assert second != first
        assert term.signal_job(signal.SIGKILL, first) == 0
        await term.pause_job(first)
        assert process_state(second) in ("R", "S")  # neither killed nor stopped
        assert term.signal_job(signal.SIGKILL, second) == 1
        assert (await term.wait_exit(first)).status.ok
        assert (await term.wait_exit(second)).status.signal == signal.SIGKILL
        pool.release(term)
        pool.release(term)


async def test_a_critical_failure_skips_the_waiting_follower(tmp_path: Path) -> None:
    marker = tmp_path / "x-ran"
    body = session("boom", "sleep 0.5; exit 1", critical="true") + session("x", f"touch {marker}")
    async with recorded(tmp_path, body, pool=ONE) as (engine, _):
        await _until(lambda: _sent(engine, "x"))
        assert not await engine.wait_finished()
        assert engine.sessions["x"].state is S.SKIPPED
        assert "critical session boom" in engine.sessions["x"].reason
    assert not marker.exists()
    assert not (tmp_path / "run" / "sessions" / "x.cast").exists()


async def test_a_job_stopped_by_the_operator_gets_no_follower_even_if_it_exits_0(
    tmp_path: Path,
) -> None:
    body = session("host", "trap 'exit 0' TERM; sleep 30 & wait") + session("b", "echo b")
    async with recorded(tmp_path, body, pool=ONE) as (engine, events):
        await _until(lambda: _sent(engine, "b"))
        await engine.terminate("host")
        await wait_state(engine, "b", S.COMPLETED)
        assert engine.sessions["host"].state is S.TERMINATED
        assert engine.sessions["host"].exit == ExitStatus(0)
    term = engine.sessions["host"].terminal
    assert term is not None
    assert spawn_reasons(events, "b") == [f"on pooled terminal #{term.id}"]


async def test_a_slow_digest_past_the_boundary_timeout_keeps_every_byte_with_its_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The end marker may trail the exit report by long while the engine digests a flood;
    with the relay alive it cannot be lost, so nothing is cut at BOUNDARY_TIMEOUT."""
    monkeypatch.setattr(launched, "BOUNDARY_TIMEOUT", 0.001)
    got = bytearray()

    def slow_sink(data: bytes) -> None:
        got.extend(data)
        time.sleep(0.005)  # a loaded engine

    async with open_pool(PoolSpec(size=1, warm=1)) as pool:
        term = await pool.acquire()
        assert isinstance(term, PooledTerminal)
        await term.start(Job(["head", "-c", "3000000", "/dev/zero"]), slow_sink)
        assert (await term.wait()).ok
        assert len(got) == 3000000
        assert term.reusable
        pool.release(term)


async def test_a_follower_that_queries_the_terminal_at_once_gets_its_answer(
    tmp_path: Path,
) -> None:
    asker = "stty -icanon -echo; printf '\\\\033[6n'; IFS= read -r -t 5 -d R r; echo got=${r#*[}"
    body = session("host", "sleep 0.3") + session("asker", asker)
    async with recorded(tmp_path, body, pool=ONE) as (engine, events):
        await _until(lambda: _sent(engine, "asker"))
        assert await engine.wait_finished()
        assert any("got=1;1" in line for line in engine.sessions["asker"].screen.text())
    assert spawn_reasons(events, "asker")[0].startswith("following")


def test_a_job_sent_to_a_launcher_moves_only_along_its_transition_table() -> None:
    """The hand-over's phases are data: a started job cannot be dropped afterwards, a
    dropped follower cannot start, and either decides its fate once."""
    started = JobRun(1, sink=lambda _: None)
    started.advance(JobPhase.TAKING_OVER)
    started.advance(JobPhase.STARTED)
    assert started.fate.is_set()
    with pytest.raises(TerminalError, match="cannot go from started to dropped"):
        started.advance(JobPhase.DROPPED)
    dropped = JobRun(2, sink=lambda _: None)
    dropped.advance(JobPhase.DROPPED)
    with pytest.raises(TerminalError):
        dropped.advance(JobPhase.STARTED)
    assert set(JOB_TRANSITIONS) == set(JobPhase)
