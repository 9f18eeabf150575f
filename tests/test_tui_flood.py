"""A flooding session must not freeze the room: keys respond and other panes keep updating."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
from textual import events

from engine.states import SessionState
from tests.support import wait_state
from tests.tui_support import open_room, pane_text, session, until

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

BODY = (
    session("flood", "exec yes 'flooding the pane with a long line of text, over and over'")
    + session("ticker", "i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.1; done")
    + session("idle", "exec sleep 60")
)


async def test_a_flooding_session_leaves_keys_and_other_panes_responsive(tmp_path: Path) -> None:
    async with open_room(tmp_path, BODY) as (engine, app, pilot):
        await wait_state(engine, "flood", SessionState.ACTIVE)
        await pilot.pause(1.0)  # the flood is well under way
        ticks, latencies = [], []
        for step in range(10):
            last = [line for line in pane_text(app, "ticker") if line.startswith("tick-")]
            ticks.append(last[-1] if last else "")
            key = "j" if step % 2 == 0 else "k"
            row = app.session_list.cursor_row
            started = time.monotonic()
            app.post_message(events.Key(key, key))

            def moved(row: int = row) -> bool:
                return app.session_list.cursor_row != row

            await until(pilot, moved, timeout=2)
            latencies.append(time.monotonic() - started)
            await pilot.pause(0.15)
        assert max(latencies) < 0.25, f"keys stalled behind the flood: {latencies}"
        assert len(set(ticks)) >= 5, f"ticker pane froze: {ticks}"
        app.post_message(events.Key("p", "p"))
        await wait_state(engine, "flood", SessionState.PAUSED)
