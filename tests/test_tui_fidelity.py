"""Full-screen programs render in a pane exactly as in tmux: same program, same size, same
screen text. Deterministic programs only (less, vim, a curses script): no clocks or pids."""

from __future__ import annotations

import shutil
import sys
from typing import TYPE_CHECKING

import anyio
import pytest

from engine.states import SessionState
from tests.support import wait_state
from tests.tmux_support import tmux_server
from tests.tui_support import open_room, pane_text, session, until

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

pytestmark = [pytest.mark.anyio, pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux")]

CURSES = """
import curses

def main(scr):
    curses.start_color(); curses.use_default_colors()
    curses.init_pair(1, curses.COLOR_RED, -1)
    h, w = scr.getmaxyx()
    scr.border()
    scr.addstr(1, 2, f"curses {w}x{h}", curses.A_BOLD)
    scr.addstr(h // 2, max((w - 12) // 2, 0), "centre line", curses.color_pair(1))
    for i in range(3, h - 2, 3):
        scr.addstr(i, 4, "row %02d " % i + "=" * max(w - 16, 0))
    scr.refresh()
    scr.getch()

curses.wrapper(main)
"""


def programs(tmp_path: Path) -> dict[str, str]:
    text = tmp_path / "text.txt"
    text.write_text("".join(f"line {i:04d} " + "abcdefgh" * (i % 9) + "\n" for i in range(400)))
    script = tmp_path / "draw.py"
    script.write_text(CURSES)
    found = {
        "less": f"less -S {text}",
        "curses": f"{sys.executable} {script}",
    }
    if shutil.which("vim"):
        found["vim"] = f"vim -u NONE -N -n -i NONE {text}"
    return found


@pytest.mark.parametrize("program", ["less", "curses", "vim"])
async def test_a_full_screen_program_looks_as_in_tmux(tmp_path: Path, program: str) -> None:
    commands = programs(tmp_path)
    if program not in commands:
        pytest.skip(f"{program} is not installed")
    body = session("full", f"sleep 1; exec {commands[program]}", 'stop_signal = "KILL"')
    async with open_room(tmp_path, body, size=(120, 36)) as (engine, app, pilot):
        await wait_state(engine, "full", SessionState.ACTIVE)
        pane = app.grid.panes["full"]
        await until(pilot, lambda: engine.session_info("full").cols == pane.size.width)
        cols, rows = pane.size.width, pane.size.height
        with tmux_server() as tmux:
            tmux.start(f"sleep 0.5; exec {commands[program]}", cols, rows + 1)
            tmux.run("set-option", "-t", "main", "status", "off")
            tmux.run("resize-window", "-t", "main", "-x", str(cols), "-y", str(rows))
            theirs = await settled(tmux.screen, rows)
        assert sum(bool(line) for line in theirs) > rows // 2, theirs
        # Both programs draw at their own pace: wait (on state, not a guess) for our pane to show
        # what tmux shows, and compare what we last saw if it never does.
        ours = trimmed(pane_text(app, "full"), rows)
        with anyio.move_on_after(20):
            while ours != theirs:
                await pilot.pause(0.1)
                ours = trimmed(pane_text(app, "full"), rows)
        assert ours == theirs, (cols, rows, pane.size, engine.session_info("full").cols)


def trimmed(lines: list[str], rows: int) -> list[str]:
    return [line.rstrip() for line in lines] + [""] * (rows - len(lines))


async def settled(read: Callable[[], list[str]], rows: int) -> list[str]:
    """The screen once it has drawn and stayed the same for half a second."""
    last: list[str] = []
    steady_since = 0.0
    with anyio.fail_after(20):
        while True:
            now = trimmed(read(), rows)
            if now != last or not any(now):
                last, steady_since = now, anyio.current_time()
            elif anyio.current_time() - steady_since >= 0.5:
                return now
            await anyio.sleep(0.1)
