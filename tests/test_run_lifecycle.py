"""A run that comes to rest is over: summary.json and the verdict then, not only at stop;
an operator stop is `stopped`, not a failure; the room shows the verdict."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from engine.events import RunFinished
from engine.states import SessionState as S
from tests.remote_support import eventually
from tests.support import running, wait_state
from tests.tui_support import open_room, session, until

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio
QUICK = session("quick", "echo done") + session("other", "echo also")


def _summary(tmp_path: Path) -> dict[str, Any] | None:
    path = tmp_path / "run" / "summary.json"
    return json.loads(path.read_text()) if path.exists() else None


async def test_summary_is_written_when_the_run_comes_to_rest_and_again_after_a_restart(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, QUICK) as engine:
        await eventually(lambda: _summary(tmp_path) is not None)
        first = _summary(tmp_path)
        assert first is not None
        assert first["verdict"]["outcome"] == "succeeded"
        assert engine.run_over
        with engine.subscribe() as events:
            await engine.restart("quick")
            assert not engine.run_over
            async for event in events:
                if isinstance(event, RunFinished):
                    break
        assert (event.outcome, event.succeeded, event.total) == ("succeeded", 2, 2)
        again = _summary(tmp_path)
        assert again is not None
        attempts = {s["name"]: len(s["attempts"]) for s in again["sessions"]}
        assert attempts == {"quick": 2, "other": 1}


async def test_an_operator_stop_gives_the_verdict_stopped_not_failed(tmp_path: Path) -> None:
    body = session("long", "sleep 60", "critical = true") + session("quick", "echo done")
    async with running(tmp_path, body) as engine:
        await wait_state(engine, "long", S.ACTIVE)
        await wait_state(engine, "quick", S.COMPLETED)
        await engine.terminate_all()
        verdict = engine.verdict()
        assert (verdict.outcome, verdict.ok) == ("stopped", False)
        assert verdict.reason == "stopped by operator: 1 of 2 sessions had completed"
        await engine.restart("long")  # the run moves again: no longer stopped
        assert engine.verdict().outcome != "stopped"


async def test_the_room_shows_the_verdict_when_the_run_is_over(tmp_path: Path) -> None:
    body = QUICK + session("bad", "sleep 1; exit 3")  # a restart keeps it moving a while
    async with open_room(tmp_path, body) as (engine, app, pilot):
        await until(pilot, lambda: "run over" in app.sub_title)
        assert "run over: failed — 1 of 3 sessions did not complete (2/3 completed)" in (
            app.sub_title
        )
        await engine.restart("bad")
        await until(pilot, lambda: "run over" not in app.sub_title)
