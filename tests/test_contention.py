"""The contention model (docs/contention.md) against a deck whose true figures are known.

Eight sessions on four slots, held at a gate: while it is shut, four run and four wait,
by construction; the gate opens, the four waiting ones follow. Every figure is checked
against values recomputed from the sessions' own timestamps (ready_at, started_at,
ended_at) with the documented formulas, never against a clock reading of the test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from engine.engine import open_engine
from engine.states import SessionState as S
from tests.support import make_deck

if TYPE_CHECKING:
    from pathlib import Path

    from engine.engine import Engine
    from engine.sessions.info import AttemptInfo
    from engine.statistics import ContentionStatistics

pytestmark = pytest.mark.anyio

EPS = 1e-6


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def expected(stats: ContentionStatistics, attempts: list[AttemptInfo]) -> dict[str, float]:
    """The figures at `stats.at`, from the attempts' timestamps alone."""
    at, start = stats.at, stats.at - stats.window
    waiting = [a for a in attempts if a.ready_at and a.ready_at <= at < (a.started_at or 1e18)]
    running = [a for a in attempts if a.started_at and a.started_at <= at < a.ended_at]
    started = [a for a in attempts if a.started_at and start < a.started_at <= at]
    waits = [a.started_at - a.ready_at for a in started if a.started_at and a.ready_at]
    waits += [at - a.ready_at for a in waiting if a.ready_at]
    ended = [a for a in attempts if start < a.ended_at <= at]
    return {
        "waiting": len(waiting),
        "running": len(running),
        "wait_p50": nearest_rank(waits, 0.5),
        "wait_p95": nearest_rank(waits, 0.95),
        "wait_max": max(waits, default=0.0),
        "throughput": len(ended) / max(min(stats.window, at - stats.since), 1e-3),
    }


def check(stats: ContentionStatistics, attempts: list[AttemptInfo]) -> None:
    want = expected(stats, attempts)
    assert stats.waiting == want["waiting"]
    assert stats.running == want["running"]
    assert stats.demand == stats.running + stats.waiting
    assert stats.utilisation == pytest.approx(stats.running / stats.slots)
    assert stats.saturation == pytest.approx(stats.waiting / stats.slots)
    for figure in ("wait_p50", "wait_p95", "wait_max", "throughput"):
        assert getattr(stats, figure) == pytest.approx(want[figure], abs=EPS), figure


GATED = """
[[session]]
name = "job"
replicas = 8
command = "while [ ! -e {gate} ]; do sleep 0.01; done; sleep 0.05"
"""


async def four_active(engine: Engine) -> None:
    with anyio.fail_after(20):
        while sum(s.state is S.ACTIVE for s in engine.sessions.values()) < 4:
            await anyio.sleep(0.01)


async def a_sample_after(engine: Engine, at: float) -> ContentionStatistics:
    with anyio.fail_after(10):
        while True:
            found = [e.stats for e in engine.contention_history() if e.stats.at > at]
            if found:
                return found[0]
            await anyio.sleep(0.05)


async def test_contention_figures_match_the_sessions_own_timestamps(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    deck = make_deck(
        tmp_path, GATED.format(gate=gate), "size = 4\nwarm = 4", top="max_parallel = 4"
    )
    async with open_engine(deck, tmp_path / "run") as engine:
        await engine.start_all()
        await four_active(engine)
        held = engine.contention_statistics()
        for i in range(20):
            engine.bus_publish("figures", i)
        sampled = await a_sample_after(engine, held.at)  # the gate is still shut
        later = await a_sample_after(engine, sampled.at)
        gate.touch()
        await engine.wait_finished()
        done = engine.contention_statistics()
        history = [e.stats for e in engine.contention_history()]
        attempts = [a for info in engine.list_sessions() for a in info.attempts]

    # while the gate is shut: 4 run, 4 wait, saturation 1.0, none of the starts waited
    assert (held.slots, held.running, held.waiting, held.demand) == (4, 4, 4, 8)
    assert held.saturation == 1.0
    assert held.utilisation == 1.0
    assert (held.starts, held.waited, held.contention_rate) == (4, 0, 0.0)
    # the still-waiting sessions' waits are in the figures, and they grow while they wait
    assert later.wait_max > sampled.wait_max >= held.wait_max > 0.0
    # at the end: every start counted, the four held back had to wait
    assert (done.running, done.waiting, done.starts, done.waited) == (0, 0, 8, 4)
    assert done.contention_rate == 0.5
    assert len(attempts) == 8
    for stats in (held, sampled, later, done):
        check(stats, attempts)
    # bus rate: between the first and the last counter reading inside the window
    inside = [e for e in history if e.at >= later.at - later.window and e.at <= later.at]
    first = inside[0]
    assert later.bus_routed - first.bus_routed >= 20
    rate = (later.bus_routed - first.bus_routed) / (later.at - first.at)
    assert later.bus_rate == pytest.approx(rate)
    assert sampled.slots == sampled.target_parallel == 4
    assert "max_parallel = 4" in sampled.parallel_reason
