"""The operator's run-wide commands, in process and over the control socket: pause and
resume every session (or those matching a glob), max_parallel changed live, and the
contention figures and their history mirrored to a client."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from engine.errors import SchedulerError
from engine.events import ParallelismAdjusted
from engine.remote.remote_errors import NotPermittedError
from engine.states import SessionState as S
from tests.remote_support import attached, eventually, serving
from tests.support import make_deck

if TYPE_CHECKING:
    from pathlib import Path

    from engine.api import EngineAPI

pytestmark = pytest.mark.anyio

DECK = """
[[session]]
name = "web"
replicas = 2
command = "exec sleep 60"

[[session]]
name = "db"
command = "exec sleep 60"

[[session]]
name = "late"
command = "exec sleep 60"
"""


def states(api: EngineAPI) -> dict[str, S]:
    return {i.name: i.state for i in api.list_sessions()}


async def test_bulk_pause_resume_and_a_live_max_parallel_over_the_socket(tmp_path: Path) -> None:
    from engine.engine import open_engine

    deck = make_deck(tmp_path, DECK, "size = 4\nwarm = 3", top="max_parallel = 3")
    async with (
        open_engine(deck, tmp_path / "run") as engine,
        serving(engine) as server,
        attached(server) as remote,
        attached(server, "viewer") as viewer,
    ):
        await engine.start_all()
        three = {"web#1": S.ACTIVE, "web#2": S.ACTIVE, "db": S.ACTIVE, "late": S.QUEUED}
        await eventually(lambda: states(remote) == three)
        await eventually(lambda: remote.contention_statistics().waiting == 1)  # next sample
        assert remote.contention_statistics().slots == 3
        # a glob on the template pauses both replicas, nothing else
        assert sorted(await remote.pause_all("web")) == ["web#1", "web#2"]
        await eventually(lambda: states(remote)["web#1"] is S.PAUSED)
        assert states(engine)["db"] is S.ACTIVE
        assert await remote.resume_all() == ["web#1", "web#2"]
        await eventually(lambda: states(remote)["web#2"] is S.ACTIVE)
        # max_parallel up by one, live: the queued session starts; the event says why
        adjusted: list[ParallelismAdjusted] = []
        with remote.subscribe() as events:
            await remote.set_parallel(4)
            with anyio.fail_after(10):
                async for event in events:
                    if isinstance(event, ParallelismAdjusted):
                        adjusted.append(event)
                        break
        change = adjusted[0]
        assert (change.old, change.new, change.reason) == (3, 4, "set to 4 by the operator")
        await eventually(lambda: states(remote)["late"] is S.ACTIVE)
        await eventually(lambda: remote.contention_statistics().slots == 4)
        assert remote.contention_statistics().parallel_reason == "set to 4 by the operator"
        # a bad value is a clear error from the engine; a viewer is refused
        with pytest.raises(SchedulerError, match="from 1 to the local pool size 4"):
            await remote.set_parallel(9)
        with pytest.raises(NotPermittedError):
            await viewer.set_parallel(2)
        with pytest.raises(NotPermittedError):
            await viewer.pause_all()
        assert engine.scheduler.limit == 4
        # "auto" hands it to the controller, from the current level
        await remote.set_parallel("auto")
        await eventually(lambda: remote.contention_statistics().parallel_reason.startswith("auto"))
        # the figures' history reaches a client attached later
        await eventually(lambda: len(engine.contention_history()) >= 2)
        async with attached(server, "viewer") as late:
            assert late.contention_history()[0] == engine.contention_history()[0]
