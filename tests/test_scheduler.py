"""The scheduler on real PTYs: order, dependencies, retries, aborts, partial success."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
import pytest

from engine.engine import open_engine
from engine.events import RunAborted, SessionStateChanged
from engine.states import SessionState as S
from engine.terminals.procs import process_state
from tests.support import make_deck, wait_state

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from anyio.streams.memory import MemoryObjectReceiveStream

    from engine.engine import Engine
    from engine.events import Event

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def recorded(
    tmp_path: Path, body: str, pool: str = "size = 2\nwarm = 1", deck: str = ""
) -> AsyncIterator[tuple[Engine, list[Event]]]:
    """An engine whose every event is collected from before the first start."""
    spec = make_deck(tmp_path, body, pool, top=deck)
    events: list[Event] = []

    async def collect(stream: MemoryObjectReceiveStream[Event]) -> None:
        with stream:
            async for event in stream:  # ends when the engine closes its hub
                events.append(event)

    async with anyio.create_task_group() as tg, open_engine(spec, tmp_path / "run") as engine:
        tg.start_soon(collect, engine.subscribe())
        await engine.start_all()
        yield engine, events


def started_order(events: list[Event]) -> list[str]:
    return [e.session for e in events if isinstance(e, SessionStateChanged) and e.new is S.ACTIVE]


def span(engine: Engine, name: str) -> tuple[float, float]:
    attempt = engine.session_info(name).attempts[-1]
    assert attempt.started_at is not None
    return attempt.started_at, attempt.ended_at


def session(name: str, command: str = "true", **fields: str) -> str:
    extra = "".join(f"{key} = {value}\n" for key, value in fields.items())
    return f'[[session]]\nname = "{name}"\ncommand = "{command}"\n{extra}\n'


async def test_under_a_pool_of_one_sessions_start_by_priority_then_file_order(
    tmp_path: Path,
) -> None:
    body = (
        session("a-low", priority='"low"')
        + session("b-normal")
        + session("c-critical", priority='"critical"')
        + session("d-high", priority='"high"')
        + session("e-normal")
    )
    async with recorded(tmp_path, body, pool="size = 1\nwarm = 1") as (engine, events):
        assert await engine.wait_finished()
    assert started_order(events) == ["c-critical", "d-high", "b-normal", "e-normal", "a-low"]


async def test_a_freed_slot_starts_the_next_session_without_waiting_for_a_batch(
    tmp_path: Path,
) -> None:
    body = session("long", "sleep 1.5") + "".join(session(f"s{i}", "sleep 0.1") for i in range(4))
    async with recorded(tmp_path, body) as (engine, _):
        assert await engine.wait_finished()
        _, long_end = span(engine, "long")
        assert all(span(engine, f"s{i}")[0] < long_end for i in range(4))


async def test_a_dependency_chain_runs_one_after_the_other(tmp_path: Path) -> None:
    body = (
        session("c", "sleep 0.1", depends_on='["b"]')
        + session("b", "sleep 0.1", depends_on='["a"]')
        + session("a", "sleep 0.1")
    )
    async with recorded(tmp_path, body) as (engine, events):
        assert await engine.wait_finished()
        assert span(engine, "a")[1] <= span(engine, "b")[0]
        assert span(engine, "b")[1] <= span(engine, "c")[0]
    assert started_order(events) == ["a", "b", "c"]


def meet(mine: Path, theirs: Path) -> str:
    """A branch that ends well only if the other one runs at the same time: no timing guess."""
    return (
        f"touch {mine}; for i in $(seq 600); do [ -e {theirs} ] && exit 0; sleep 0.05; done; exit 1"
    )


async def test_a_diamond_joins_after_both_branches(tmp_path: Path) -> None:
    left_mark, right_mark = tmp_path / "left-ran", tmp_path / "right-ran"
    body = (
        session("top", "sleep 0.1")
        + session("left", meet(left_mark, right_mark), depends_on='["top"]')
        + session("right", meet(right_mark, left_mark), depends_on='["top"]')
        + session("join", depends_on='["left", "right"]')
    )
    async with recorded(tmp_path, body) as (engine, events):
        assert await engine.wait_finished()
        assert engine.session_info("left").state is S.COMPLETED
        assert engine.session_info("right").state is S.COMPLETED
        left, right = span(engine, "left"), span(engine, "right")
        assert left[0] < right[1]
        assert right[0] < left[1]
        assert span(engine, "join")[0] >= max(left[1], right[1])
    order = started_order(events)
    assert order[0] == "top"
    assert order[-1] == "join"


async def test_a_failed_dependency_skips_its_dependents_unless_they_asked_for_finished(
    tmp_path: Path,
) -> None:
    body = (
        session("base", "exit 4")
        + session("needs", depends_on='["base"]')
        + session("then", depends_on='["needs"]')
        + session("cleanup", depends_on='[{ name = "base", condition = "finished" }]')
    )
    async with recorded(tmp_path, body) as (engine, _):
        assert not await engine.wait_finished()
        needs, then = engine.session_info("needs"), engine.session_info("then")
        assert needs.state is S.SKIPPED
        assert needs.reason == "dependency base failed (exit 4) (needed: succeeded)"
        assert then.state is S.SKIPPED
        assert "dependency needs skipped" in then.reason
        assert engine.session_info("cleanup").state is S.COMPLETED
        assert needs.attempts == ()
        assert needs.pid is None


async def test_retries_back_off_and_keep_every_attempt(tmp_path: Path) -> None:
    flaky = session(
        "flaky",
        "echo try $SWARMDECK_ATTEMPT; [ $SWARMDECK_ATTEMPT -ge 3 ] || exit 5",
        retries="4",
        backoff='{ initial = "200ms", factor = 2, jitter = 0 }',
    )
    async with recorded(tmp_path, flaky) as (engine, events):
        assert await engine.wait_finished()
        info = engine.session_info("flaky")
    assert [a.exit_code for a in info.attempts] == [5, 5, 0]
    assert [a.state for a in info.attempts] == [S.FAILED, S.FAILED, S.COMPLETED]
    first, second, third = info.attempts
    assert second.started_at is not None
    assert third.started_at is not None
    gaps = [second.started_at - first.ended_at, third.started_at - second.ended_at]
    assert 0.2 <= gaps[0] < 0.2 + 2.0  # generous upper bound: a loaded machine is slow
    assert 0.4 <= gaps[1] < 0.4 + 2.0
    reasons = [e.reason for e in events if isinstance(e, SessionStateChanged) and e.new is S.QUEUED]
    assert reasons == ["retry 1/4 in 0.20s after exit 5", "retry 2/4 in 0.40s after exit 5"]
    assert engine.scheduler_statistics().retried == 2
    assert (tmp_path / "run" / "sessions" / "flaky.attempt-3.cast").exists()


async def test_a_critical_failure_aborts_the_run_and_leaves_no_process(tmp_path: Path) -> None:
    body = (
        session("crit", "sleep 0.3; exit 1", critical="true")
        + session("long", "sleep 300", stop_grace='"2s"')
        + session("later", "sleep 300")
        + session("after", "true", depends_on='["crit"]')
    )
    async with recorded(tmp_path, body) as (engine, events):
        await wait_state(engine, "long", S.ACTIVE)
        pid = engine.sessions["long"].pid
        assert pid is not None
        assert not await engine.wait_finished()
        reason = "run aborted: critical session crit failed"
        assert engine.session_info("crit").state is S.FAILED
        assert engine.session_info("long").state is S.TERMINATED
        assert engine.session_info("long").reason == f"{reason} (killed by SIGTERM)"
        assert engine.session_info("later").state is S.SKIPPED
        assert engine.session_info("later").reason == reason
        assert engine.session_info("after").state is S.SKIPPED
        assert process_state(pid) in ("", "Z")
        assert engine.verdict().outcome == "aborted"
    assert [e.reason for e in events if isinstance(e, RunAborted)] == [reason]


async def test_min_success_accepts_partial_results_and_names_the_failures(tmp_path: Path) -> None:
    body = session("one") + session("two") + session("broken", "exit 3") + session("three")
    spec_top = "min_success = 3\n"
    async with recorded(tmp_path, body, deck=spec_top) as (engine, _):
        assert await engine.wait_finished()
        assert engine.verdict().outcome == "partial"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["ok"] is True
    assert summary["verdict"]["outcome"] == "partial"
    assert summary["verdict"]["not_completed"] == [
        {"session": "broken", "state": "failed", "reason": "exit 3"}
    ]


async def test_below_min_success_the_run_fails(tmp_path: Path) -> None:
    body = session("one") + session("bad", "exit 1") + session("worse", "exit 2")
    async with recorded(tmp_path, body, deck="min_success = 2\n") as (engine, _):
        assert not await engine.wait_finished()
        assert engine.verdict().outcome == "failed"
        assert "only 1 non-critical session completed" in engine.verdict().reason


async def test_a_failure_rate_over_the_limit_halts_new_starts(tmp_path: Path) -> None:
    body = session("f1", "exit 1") + session("f2", "exit 1") + session("never")
    deck = "max_failure_rate = 0.5\nfailure_window = 2\n"
    async with recorded(tmp_path, body, pool="size = 1\nwarm = 1\n", deck=deck) as (engine, _):
        assert not await engine.wait_finished()
        never = engine.session_info("never")
        assert never.state is S.SKIPPED
        assert never.reason.startswith("run halted: 100% of the last 2 sessions failed")
        assert engine.verdict().outcome == "halted"


async def test_the_memory_budget_bounds_what_runs_at_once(tmp_path: Path) -> None:
    body = "".join(session(f"m{i}", "sleep 0.3", memory='"512MB"') for i in range(3))
    async with recorded(tmp_path, body, "size = 3\nwarm = 1", 'memory_budget = "1GB"\n') as (
        engine,
        _,
    ):
        assert await engine.wait_finished()
        spans = sorted(span(engine, f"m{i}") for i in range(3))
    assert spans[2][0] >= min(spans[0][1], spans[1][1])  # the third waited for memory


async def test_summary_json_lists_attempts_timing_and_workspace(tmp_path: Path) -> None:
    body = session("ok", "echo hi")
    async with recorded(tmp_path, body) as (engine, _):
        assert await engine.wait_finished()
    data = json.loads((tmp_path / "run" / "summary.json").read_text())
    [row] = data["sessions"]
    assert row["state"] == "completed"
    assert row["exit_code"] == 0
    assert row["workspace"] == str(tmp_path)
    assert row["queue_wait"] >= 0
    assert row["run_time"] >= 0
    assert row["started_at"] <= row["ended_at"]
    assert [a["number"] for a in row["attempts"]] == [1]
    assert data["verdict"]["outcome"] == "succeeded"
    assert data["scheduler"]["completed"] == 1
