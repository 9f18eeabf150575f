"""Scheduling rules without processes: sizes, backoff, readiness, cycles, auto, verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.deck.dependencies import find_cycles
from engine.deck.sizes import format_size, parse_size
from engine.deck.spec import Backoff, parse_deck
from engine.scheduling.parallelism import HOLD, PERIOD, REPROBE, AutoParallelism, Pressure
from engine.scheduling.readiness import Outcome, readiness
from engine.scheduling.scheduler import session_names
from engine.scheduling.summary import verdict
from engine.states import SessionState as S

DONE = Outcome(S.COMPLETED, True)
FAILED = Outcome(S.FAILED, True, "exit 1")
RUNNING = Outcome(S.ACTIVE, True)
QUEUED = Outcome(S.QUEUED, False)
SKIPPED = Outcome(S.SKIPPED, False, "dependency x failed")


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512MB", 512 * 10**6),
        ("1.5GiB", int(1.5 * 2**30)),
        ("200 k", 200_000),
        ("64KiB", 65536),
        ("1g", 10**9),
        ("100B", 100),
        (4096, 4096),
    ],
)
def test_memory_sizes_accept_decimal_and_binary_units(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "", "5 XB", "-1MB", True, None, "1e3MB"])
def test_malformed_sizes_name_the_accepted_forms(text: object) -> None:
    with pytest.raises(ValueError, match="expected a memory size such as 512MB"):
        parse_size(text)


def test_bits_are_refused_rather_than_misread() -> None:
    with pytest.raises(ValueError, match="'b' means bits"):
        parse_size("512Mb")
    assert format_size(512 * 2**20) == "512 MiB"


def test_backoff_grows_by_its_factor_up_to_its_cap_within_the_jitter_band() -> None:
    backoff = Backoff(initial=1.0, factor=3.0, max=5.0, jitter=0.2)
    assert [backoff.delay(n, 0.0) for n in (1, 2, 3, 4)] == [1.0, 3.0, 5.0, 5.0]
    assert backoff.delay(1, 1.0) == pytest.approx(1.2)
    assert backoff.delay(1, -1.0) == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("condition", "outcomes", "expected"),
    [
        ("succeeded", [DONE, DONE], "ready"),
        ("succeeded", [DONE, RUNNING], "wait"),
        ("succeeded", [DONE, FAILED], "skip"),
        ("succeeded", [SKIPPED], "skip"),
        ("finished", [FAILED, SKIPPED], "ready"),
        ("finished", [FAILED, RUNNING], "wait"),
        ("started", [RUNNING], "ready"),
        ("started", [QUEUED], "wait"),
        ("started", [SKIPPED], "skip"),
        ("started", [FAILED], "ready"),
    ],
)
def test_a_dependency_is_ready_waiting_or_hopeless_by_its_condition(
    condition: str, outcomes: list[Outcome], expected: str
) -> None:
    assert readiness(condition, outcomes)[0] == expected  # type: ignore[arg-type]


def test_a_skip_explains_which_outcome_blocked_it() -> None:
    assert readiness("succeeded", [FAILED]) == ("skip", "failed (exit 1)")


def test_each_cycle_is_named_once_as_a_closed_path() -> None:
    graph = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["d"], "e": ["a"]}
    assert find_cycles(graph) == [["a", "b", "c", "a"], ["d", "d"]]
    assert find_cycles({"x": [], "y": ["x"]}) == []


def simulate(
    cpu_bound: bool, steps: int, cores: int = 2, ceiling: int = 16, others: int = 0
) -> list[int]:
    """The controller against a model machine: each period, `limit` attempts of a 1 s
    job complete; CPU-bound, they share the cores with `others` busy tasks, so they run
    ×((limit + others) / cores) past the cores, and the CPU stalls."""
    auto = AutoParallelism(ceiling, cores)
    now = auto.changed_at
    levels = []
    for _ in range(steps):
        now += PERIOD
        level = auto.limit
        busy = level + others if cpu_bound else others
        over = busy > cores
        for _ in range(level):
            auto.run_times.completed("job", now, max(1.0, busy / cores) if cpu_bound else 1.0)
        stall, runnable = (0.8, busy / cores) if over else (0.02, 0.2)
        inflation, samples = auto.sample_inflation()
        auto.decide(Pressure(stall, runnable, 0.5, 50, level, inflation, samples), now)
        levels.append(auto.limit)
    return levels


def test_auto_parallelism_climbs_to_the_pool_size_on_io_bound_work_in_a_few_periods() -> None:
    levels = simulate(cpu_bound=False, steps=12)
    assert levels.index(16) * PERIOD <= 2.0  # 2 → 8 → 16: ×4 on flat run times
    assert levels[levels.index(16) :] == [16] * (12 - levels.index(16))


def test_auto_parallelism_comes_back_to_the_cores_on_cpu_bound_work_and_stays() -> None:
    levels = simulate(cpu_bound=True, steps=int(REPROBE / PERIOD))
    assert max(levels) == 8  # one slow-start probe, then cut by the inflation it caused
    settled = levels[len(levels) // 3 :]
    assert set(settled) == {2}


def test_auto_parallelism_keeps_a_level_that_serves_more_on_a_cpu_shared_with_others() -> None:
    """With 8 other busy tasks on 2 cores, 8 jobs get 8/16 of the CPU and 2 jobs 2/10:
    each runs ×1.6 slower at 8, but 8 / 1.6 = 5 jobs' worth against 2 at level 2."""
    levels = simulate(cpu_bound=True, steps=int(REPROBE / PERIOD), ceiling=8, others=8)
    assert levels[-1] == 8
    assert min(levels[2:]) == 8


def test_auto_parallelism_backs_off_on_low_memory_and_raises_on_an_idle_cpu() -> None:
    auto = AutoParallelism(ceiling=4, cores=3)
    low = auto.decide(Pressure(0.0, 0.1, 0.05, 3, 3), now=auto.changed_at + 5)
    assert low is not None
    assert (low.old, low.new) == (3, 2)
    assert "available memory 5%" in low.reason
    # the cut settles once no more run than the new limit; from then on, with no
    # sample yet (long sessions) and the CPU idle for HOLD: raise
    settled = Pressure(0.0, 0.1, 0.5, 3, 2)
    assert auto.decide(settled, now=auto.changed_at + 1) is None
    idle = auto.decide(settled, now=auto.changed_at + HOLD)
    assert idle is not None
    assert idle.new == 4
    assert "3 ready, CPU stalled 0%" in idle.reason
    one = AutoParallelism(ceiling=4, cores=1)
    assert one.decide(Pressure(0.0, 0.1, 0.05, 3, 1), now=one.changed_at + 5) is None  # ≥ 1


def test_replicas_expand_to_numbered_names() -> None:
    spec = parse_deck(
        '[[session]]\nname = "w"\ncommand = "x"\nreplicas = 3\n'
        '[[session]]\nname = "solo"\ncommand = "x"\n',
        Path("/decks/deck.toml"),
    )
    assert session_names(spec) == ["w#1", "w#2", "w#3", "solo"]


def test_without_min_success_every_session_must_complete() -> None:
    from engine.sessions.info import SessionInfo

    spec = parse_deck(
        'min_success = 1\n[[session]]\nname = "a"\ncommand = "x"\ncritical = true\n'
        '[[session]]\nname = "b"\ncommand = "x"\n[[session]]\nname = "c"\ncommand = "x"\n',
        Path("/decks/deck.toml"),
    )

    def info(name: str, state: S, critical: bool = False) -> SessionInfo:
        return SessionInfo(
            name=name,
            state=state,
            reason="",
            command="x",
            pid=None,
            terminal="pooled",
            terminal_id=None,
            exit_code=None,
            signal=None,
            queued_at=0.0,
            started_at=None,
            ended_at=None,
            title="",
            cols=80,
            rows=24,
            critical=critical,
        )

    partial = [info("a", S.COMPLETED, True), info("b", S.COMPLETED), info("c", S.FAILED)]
    assert verdict(spec, partial, None).outcome == "partial"
    broken = [info("a", S.FAILED, True), info("b", S.COMPLETED), info("c", S.COMPLETED)]
    assert verdict(spec, broken, None).outcome == "failed"
    assert verdict(spec, partial, "run aborted: critical session a failed").outcome == "aborted"
