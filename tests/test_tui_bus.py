"""The bus panel shows what sessions really send, read from the engine's typed events."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.tui_support import open_room, session, until
from tui.widgets.bus_panel import BusPanel

if TYPE_CHECKING:
    from pathlib import Path

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
