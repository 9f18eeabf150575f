"""The room never crashes and never disagrees with the engine, whatever is pressed when.

A seeded random walk (tests/room_walk.py) over a real engine with real PTYs: sessions
start, change state, finish, fail, retry and are forked while every key and palette
command is tried. After each step, once the room has caught up with the engine's events,
it must be alive and consistent: its list rows are the sessions matching the filter, in
the chosen order, and its panes are those rows' page (only the selected one when zoomed).
A failure names the seed; `pytest tests/test_tui_fuzz.py --seed N --steps N` walks the
same keys again (the engine's timing still varies, so a rare crash may take a few runs).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import anyio
import pytest

from engine import LIVE_STATES
from tests.room_walk import ANCHOR, RoomWalk
from tests.support import running
from tests.tui_support import session
from tui.app import ControlRoom
from tui.widgets.pane_grid import PAGE
from tui.widgets.session_list import SORTS, matches
from tui.widgets.terminal_pane import TerminalPane

if TYPE_CHECKING:
    from pathlib import Path

    from textual.pilot import Pilot

    from engine import Engine

pytestmark = pytest.mark.anyio
DECK = (
    session(ANCHOR, "exec sleep 3600")
    + session("shell", "PS1='$ ' exec bash --norc -i", 'stop_signal = "HUP"')
    + session("ticker", "i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.2; done")
    + session("quick", "echo done")
    + session("failing", "echo oops; exit 3", "retries = 1\nbackoff = { initial = 0.2 }")
    + session("after", "seq 1 30", 'depends_on = ["quick"]\npriority = "high"')
)
POOL = "size = 3\nwarm = 1"
CATCH_UP = 10.0
"""How long the room may take to show what the engine did (seconds; it is usually ms)."""


def problems(engine: Engine, app: ControlRoom) -> list[str]:
    """What is wrong with the room right now (empty: alive and consistent)."""
    if not app.is_running:
        return ["the room is not running"]
    found: list[str] = []
    listing = app.session_list
    infos = {info.name: info for info in engine.list_sessions()}
    known = {name: info.state for name, info in listing.infos.items()}
    if known != {name: info.state for name, info in infos.items()}:
        found.append(f"list knows {known}, engine has {[(n, i.state) for n, i in infos.items()]}")
    rows = [str(row.key.value) for row in listing.ordered_rows]
    expected = [name for name in infos if matches(infos[name], listing.filter)]
    if listing.ordering == "run time":  # times move on: the order is as of the last rebuild
        rows_match = sorted(rows) == sorted(expected)
    else:
        expected.sort(key=lambda name: SORTS[listing.ordering](infos[name]))
        if (order := listing.attention_order) is not None:  # `a`: the places it gave then
            expected.sort(key=lambda name: order.get(name, len(order)))
        rows_match = rows == expected
    if not rows_match:
        found.append(f"rows {rows}, filter {listing.filter!r} {listing.ordering}: {expected}")
    if rows != listing.shown():
        found.append(f"rows {rows} but the room thinks it shows {listing.shown()}")
    found += pane_problems(app, rows)
    return found


def pane_problems(app: ControlRoom, rows: list[str]) -> list[str]:
    selected = app.selected
    if (selected is None) != (not rows):
        return [f"selected {selected!r} with rows {rows}"]
    start = rows.index(selected) // PAGE * PAGE if selected in rows else 0
    page = rows[start : start + PAGE]
    panes = list(app.grid.panes)
    if panes != page:
        return [f"panes {panes}, page of {selected!r} in {rows}: {page}"]
    visible = [name for name, pane in app.grid.panes.items() if pane.display]
    wanted = [selected] if app.zoomed and selected in page else page
    if visible != wanted:
        return [f"visible panes {visible}, wanted {wanted} (zoomed {app.zoomed})"]
    focused = app.focused
    if isinstance(focused, TerminalPane) and focused.session != selected:
        return [f"keys go to {focused.session}'s pane while {selected} is selected"]
    if isinstance(focused, TerminalPane) and focused.state not in LIVE_STATES:
        return [f"keys go to {focused.session}'s pane, which is {focused.state}"]
    return []


async def caught_up(pilot: Pilot[None], engine: Engine, app: ControlRoom) -> list[str]:
    """Problems that remain once the room had time to handle the engine's events."""
    found = problems(engine, app)
    with anyio.move_on_after(CATCH_UP):
        for _ in range(2):  # and still so after one more turn of every pump
            await pilot.pause(0)
            while found := problems(engine, app):
                await pilot.pause(0.01)
    return found


async def test_a_random_walk_of_keys_and_commands_keeps_the_room_alive_and_consistent(
    tmp_path: Path, fuzz_plan: tuple[int, int]
) -> None:
    steps, seed = fuzz_plan
    rerun = f"seed {seed}: pytest tests/test_tui_fuzz.py --seed {seed} --steps {steps}"
    done: list[str] = []

    def report(what: str) -> str:
        recent = "\n  ".join(done[-15:])
        return f"{what} ({rerun}) after {len(done)} steps; the last ones:\n  {recent}"

    try:
        async with running(tmp_path, DECK, POOL) as engine:
            app = ControlRoom(engine)
            async with app.run_test(size=(100, 32)) as pilot:
                walk = RoomWalk(random.Random(seed), engine, app, pilot)
                for _ in range(steps):
                    import time

                    t0 = time.perf_counter()
                    done.append(await walk.step())
                    t1 = time.perf_counter()
                    found = await caught_up(pilot, engine, app)
                    print(f"TIMING {t1 - t0:.3f} {time.perf_counter() - t1:.3f} {done[-1]}")
                    assert not found, report("; ".join(found))
                    errors = app.incidents.errors if app.incidents is not None else []
                    assert not errors, report(f"the room recorded errors: {errors!r}")
                while app.screen is not app.screen_stack[0]:  # end quiet: no dialog, no
                    await pilot.press("escape")  # callback still pending at teardown
                await pilot.pause()
    except AssertionError:
        raise
    except Exception as error:  # the room or the walk died: say where the walk was
        raise AssertionError(report(f"{type(error).__name__}: {error}")) from error
