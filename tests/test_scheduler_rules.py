"""Scheduling rules without processes: sizes, backoff, readiness, cycles, auto, verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.deck.dependencies import find_cycles
from engine.deck.sizes import format_size, parse_size
from engine.deck.spec import Backoff, parse_deck
from engine.scheduling.parallelism import COOLDOWN, AutoParallelism, Pressure
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


def sample(
    load: float = 0.5,
    memory: float = 0.5,
    throughput: float = 1.0,
    ready: int = 3,
    running: int = 2,
) -> Pressure:
    return Pressure(load, memory, throughput, ready, running)


def test_auto_parallelism_raises_when_sessions_wait_and_the_machine_is_idle() -> None:
    auto = AutoParallelism(ceiling=4, cores=2)
    change = auto.decide(sample(running=2), now=100.0)
    assert change is not None
    assert (change.old, change.new) == (2, 3)
    assert "3 ready, load 0.50 per core" in change.reason
    assert auto.decide(sample(running=3), now=100.0 + COOLDOWN / 2) is None  # cooling down


def test_auto_parallelism_backs_off_under_load_memory_pressure_or_a_useless_raise() -> None:
    auto = AutoParallelism(ceiling=4, cores=3)
    change = auto.decide(sample(load=2.5), now=0.0)
    assert change is not None
    assert change.new == 2
    assert "load 2.50 per core > 1.5" in change.reason
    change = auto.decide(sample(memory=0.05), now=100.0)
    assert change is not None
    assert change.new == 1
    assert "available memory 5%" in change.reason
    assert auto.decide(sample(memory=0.05), now=200.0) is None  # never below 1
    raised = auto.decide(sample(running=1, throughput=2.0), now=300.0)
    assert raised is not None
    assert raised.new == 2
    fell = auto.decide(sample(running=2, throughput=1.0), now=400.0)
    assert fell is not None
    assert fell.new == 1
    assert "throughput fell" in fell.reason


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
