"""Alerts from the deck's [alerts] table: raised once, cleared once, in the run directory,
on the bus (swarmdeck.alerts) and as events."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING

import anyio
import pytest

from engine.alerts import TOPIC, Alerts, Figures
from engine.deck.alert_spec import AlertsSpec
from engine.engine import open_engine
from engine.events import AlertCleared, AlertRaised
from engine.scheduling.contention import Contention
from tests.support import make_deck

if TYPE_CHECKING:
    from pathlib import Path

    from engine.engine import Engine

pytestmark = pytest.mark.anyio

GATED = """
[[session]]
name = "job"
replicas = 4
command = "while [ ! -e {gate} ]; do sleep 0.01; done"
"""


async def until(engine: Engine, alert: str, kind: type[AlertRaised | AlertCleared]) -> None:
    with anyio.fail_after(20):
        while not any(isinstance(e, kind) and e.alert == alert for e in engine.alert_history()):
            await anyio.sleep(0.05)


async def test_saturation_and_silence_are_raised_then_cleared_everywhere(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    deck = make_deck(
        tmp_path,
        GATED.format(gate=gate),
        "size = 2\nwarm = 2",
        top='max_parallel = 2\n[alerts]\nsaturation = 1.0\nsilent = "0.5s"',
    )
    async with open_engine(deck, tmp_path / "run") as engine:
        alerts = engine.bus_subscribe(TOPIC)
        await engine.start_all()
        await until(engine, "saturation", AlertRaised)  # 2 run, 2 wait for 2 slots
        await until(engine, "silent", AlertRaised)  # the gated jobs print nothing
        gate.touch()
        await engine.wait_finished()
        await until(engine, "saturation", AlertCleared)
        await until(engine, "silent", AlertCleared)
        published = [m.payload for m in alerts.drain_nowait()]
        alerts.close()
        history = engine.alert_history()
    raised = [e for e in history if isinstance(e, AlertRaised)]
    saturated = [e for e in raised if e.alert == "saturation"]
    assert len(saturated) == 1  # said once while it lasted
    assert saturated[0].subject == "run"
    assert saturated[0].text == "saturated: 2 waiting for 2 slots (100%)"
    assert {e.subject for e in raised if e.alert == "silent"} <= {"job#1", "job#2"}
    lines = (tmp_path / "run" / "alerts.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [e.model_dump(mode="json") for e in history]
    assert published == [e.model_dump(mode="json") for e in history]


def figures(**fields: object) -> Figures:
    stats = Contention().statistics(0, [], 4, 4, "fixed")
    base = Figures(stats, None, None, 0, {})
    return replace(base, **fields)  # type: ignore[arg-type]


def test_failure_rate_memory_and_dead_letter_growth_cross_their_thresholds(
    tmp_path: Path,
) -> None:
    spec = AlertsSpec(failure_rate=0.5, memory_available=2**30, dlq_growth=3)
    said: list[AlertRaised | AlertCleared] = []
    published: list[str] = []
    alerts = Alerts(spec, tmp_path, said.append, published.append)
    alerts.check(figures(failure_rate=0.4, memory_available=2**31, dead_lettered=10), now=0.0)
    assert said == []
    alerts.check(figures(failure_rate=0.5, memory_available=2**29, dead_lettered=12), now=30.0)
    alerts.check(figures(failure_rate=0.6, memory_available=2**29, dead_lettered=13), now=40.0)
    assert [(e.alert, e.kind) for e in said] == [
        ("failure_rate", "alert-raised"),
        ("memory_available", "alert-raised"),
        ("dlq_growth", "alert-raised"),
    ]
    assert said[2].text == "3 bus messages dead-lettered in the last minute"
    # a minute on, no new dead letters: growth is 0; the rest came back too
    alerts.check(figures(failure_rate=0.1, memory_available=2**31, dead_lettered=13), now=101.0)
    assert [e.kind for e in said[3:]] == ["alert-cleared"] * 3
    assert len(published) == 6
