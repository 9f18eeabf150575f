"""Deterministic decks and views of the room, for snapshot tests and `scripts/screenshots`.

Sessions print fixed output (after the pane has sized their PTY) and then sleep, and the
room runs with `redact=True`: pids and clocks are masked and the pool panel shows a fixed
series of pool and contention samples instead of live ones, so the same view renders the
same on any machine.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from textual.widgets import Input

from engine import (
    ContentionSampled,
    ContentionStatistics,
    PoolSampled,
    PoolStatistics,
    open_engine,
    parse_deck,
)
from tui.app import ControlRoom
from tui.render import line_text
from tui.screens.fork import ForkScreen
from tui.screens.help import HelpScreen
from tui.widgets.pool_panel import PoolPanel

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from textual.pilot import Pilot

SIZE = (150, 44)
_COLOURS = (
    r"printf '\e[1;32m✔ compiled\e[0m core (\e[33m12 warnings\e[0m)\n';"
    r"printf '\e[38;5;208m256: orange\e[0m \e[38;2;90;160;250mtruecolor: blue\e[0m\n';"
    r"printf '\e[7m inverse \e[0m \e[4munderline\e[0m \e[2mfaint\e[0m\n';"
    r"printf '[\e[42m%20s\e[0m%10s] 66%%\n' '' '';"
)
DECK = f"""
name = "showcase"

[pool]
size = 4
warm = 0

[[session]]
name = "build"
command = '''sleep 0.6; {_COLOURS} exec sleep 60'''

[[session]]
name = "worker"
command = '''sleep 0.6; for i in 1 2 3 4 5 6; do echo "job $i: done"; done; exec sleep 60'''

[[session]]
name = "deploy"
command = '''sleep 0.6; echo 'deploying to staging'; echo 'error: unreachable' >&2; exit 3'''

[[session]]
name = "tests"
command = '''sleep 0.6; echo '128 passed'; exit 0'''
"""
SAMPLES = [(1, 0.09), (2, 0.11), (3, 0.10), (4, 0.12)]  # (in use, start-up p95)
CONTENTION = [  # (running, waiting, wait p95, sessions/s)
    (2, 0, 0.01, 0.0), (4, 2, 0.4, 0.8), (4, 4, 1.6, 1.2), (4, 6, 3.1, 1.3),
    (4, 3, 4.2, 1.5), (4, 1, 2.0, 1.6), (3, 0, 0.6, 1.1),
]  # fmt: skip


def sample(in_use: int, startup: float) -> PoolSampled:
    return PoolSampled(at=0.0, stats=PoolStatistics(
        capacity=4, size=4, in_use=in_use, idle=4 - in_use, starting=0, waiters=0,
        leases=12, created=4, recycled=1, wait_p50=startup / 2, wait_p95=startup,
        wait_p99=startup, utilisation=in_use / 4, saturation=0.0, contention=0.0,
    ))  # fmt: skip


def contention(running: int, waiting: int, wait: float, rate: float) -> ContentionSampled:
    return ContentionSampled(at=0.0, stats=ContentionStatistics(
        at=0.0, window=30.0, since=0.0, slots=4, target_parallel=4,
        parallel_reason="fixed: max_parallel = 4 in the deck", running=running,
        waiting=waiting, demand=running + waiting, utilisation=running / 4,
        saturation=waiting / 4, wait_p50=wait / 2, wait_p95=wait, wait_max=wait * 1.5,
        throughput=rate, bus_rate=12.0, bus_routed=0, contention_rate=0.5, starts=12,
        waited=6,
    ))  # fmt: skip


def screen_text(app: ControlRoom, session: str) -> str:
    return "\n".join(line_text(line) for line in app.engine.screen_snapshot(session).lines)


async def settle(pilot: Pilot[None]) -> None:
    """Wait until every session has printed and finished sessions have settled."""
    app = pilot.app
    assert isinstance(app, ControlRoom)
    with anyio.fail_after(15):
        while not (
            app.engine.session_info("deploy").state == "failed"
            and app.engine.session_info("tests").state == "completed"
            and "job 6" in screen_text(app, "worker")
            and "66%" in screen_text(app, "build")
        ):
            await pilot.pause(0.05)
    await pilot.pause(0.3)
    for pane in app.grid.panes.values():
        pane.pull()  # the frame timer would, but not on a loaded machine's schedule
    panel = app.query_one(PoolPanel)
    for values in SAMPLES:
        panel.add_sample(sample(*values))
    for figures in CONTENTION:
        panel.add_contention(contention(*figures))
    app.clear_notifications()
    await pilot.pause(0.1)


async def grid(pilot: Pilot[None]) -> None:
    await settle(pilot)


async def paused(pilot: Pilot[None]) -> None:
    await settle(pilot)
    await pilot.press("j", "p")
    app = pilot.app
    assert isinstance(app, ControlRoom)
    with anyio.fail_after(10):
        while not app.grid.panes["worker"].has_class("-state-paused"):
            await pilot.pause(0.05)
    await pilot.pause(0.2)
    app.clear_notifications()
    await pilot.pause(0.1)


async def zoomed(pilot: Pilot[None]) -> None:
    await settle(pilot)
    await pilot.press("z")
    await pilot.pause(0.4)


async def _opened(pilot: Pilot[None], ready: Callable[[ControlRoom], bool]) -> None:
    """Wait for a state, not a time: a loaded machine mounts a dialog late."""
    app = pilot.app
    assert isinstance(app, ControlRoom)
    with anyio.fail_after(10):
        while not ready(app):
            await pilot.pause(0.05)
    app.clear_notifications()
    await pilot.pause(0.1)


async def help_screen(pilot: Pilot[None]) -> None:
    await settle(pilot)
    await pilot.press("question_mark")
    await _opened(pilot, lambda app: isinstance(app.screen, HelpScreen))


async def fork_dialog(pilot: Pilot[None]) -> None:
    await settle(pilot)
    await pilot.press("f")
    await _opened(
        pilot,
        lambda app: (
            isinstance(app.screen, ForkScreen)
            and app.focused is not None
            and app.focused.id == "fork-name"
        ),
    )


VIEWS: dict[str, Callable[[Pilot[None]], Awaitable[None]]] = {
    "grid": grid,
    "paused": paused,
    "zoomed": zoomed,
    "help": help_screen,
    "fork": fork_dialog,
}


async def capture(directory: Path, view: str, theme: str, size: tuple[int, int] = SIZE) -> str:
    """Run the showcase deck, bring the room to `view`, and return its SVG."""
    deck = parse_deck(DECK, directory / "showcase.toml")
    async with open_engine(deck, directory / "run") as engine:
        await engine.start_all()
        app = ControlRoom(engine, redact=True, theme=theme)
        async with app.run_test(size=size) as pilot:
            await VIEWS[view](pilot)
            for field in app.screen.query(Input):  # a blinking cursor would make it a coin toss
                field.cursor_blink = False
            await pilot.pause()
            return app.export_screenshot(title=f"swarmdeck · {view}")


async def _write_all(out: Path, work: Path) -> None:
    for theme in ("swarmdeck-dark", "swarmdeck-light", "swarmdeck-high-contrast"):
        for view in VIEWS:
            svg = await capture(work, view, theme)
            path = out / f"{view}-{theme.removeprefix('swarmdeck-')}.svg"
            path.write_text(svg)
            print(path)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        anyio.run(_write_all, Path(sys.argv[1]), Path(work))
