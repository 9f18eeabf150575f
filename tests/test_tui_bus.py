"""The bus panel shows what sessions really send, read from the engine's typed events."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.remote_support import attached, eventually, serving
from tests.support import running
from tests.tui_support import POOL, open_room, session, until
from tui.app import ControlRoom
from tui.widgets.bus_panel import BusPanel

if TYPE_CHECKING:
    from pathlib import Path

    from engine.remote.control_server import ControlServer

pytestmark = pytest.mark.anyio

SENDER = session(
    "sender",
    "swarmdeck bus publish build.done '{\"ok\": true}' && "
    "swarmdeck bus send listener '{\"n\": 1}' && exec sleep 30",
)
LISTENER = session("listener", "exec sleep 30")


async def test_a_published_and_a_direct_message_appear_as_rows_naming_topic_and_receiver(
    tmp_path: Path,
) -> None:
    async with open_room(tmp_path, LISTENER + SENDER) as (_engine, app, pilot):
        panel = app.query_one(BusPanel)

        def rows() -> set[tuple[str, str, str]]:
            return {(r.kind, r.topic, r.route) for r in panel.rows}

        await until(pilot, lambda: len(rows()) >= 2, timeout=20)
        assert ("message-routed", "build.done", "sender → topic") in rows()
        assert ("message-routed", "(direct)", "sender → listener") in rows()


async def room_bus_log(server: ControlServer) -> tuple[set[tuple[str, str]], int]:
    """What a room that attaches now shows in its bus panel: (topic, route) rows, routed."""
    async with attached(server) as remote:
        app = ControlRoom(remote, attached=True)
        async with app.run_test(size=(140, 45)) as pilot:
            panel = app.query_one(BusPanel)
            await until(pilot, lambda: len(panel.rows) >= 2)
            return {(r.topic, r.route) for r in panel.rows}, panel.counts["routed"]


async def test_a_room_attaching_later_shows_the_bus_traffic_it_missed(tmp_path: Path) -> None:
    async with running(tmp_path, LISTENER + SENDER, POOL) as engine, serving(engine) as server:
        await eventually(lambda: engine.bus_statistics().published >= 2, timeout=20)
        await eventually(lambda: len(engine.bus_history()) >= 3)  # two rows and the totals
        first, again = await room_bus_log(server), await room_bus_log(server)
        assert first == again  # attach, detach, attach again: the same log each time
        routes, routed = first
        assert ("build.done", "sender → topic") in routes
        assert ("(direct)", "sender → listener") in routes
        assert routed >= 2
        await engine.terminate_all()
