"""A job part of which job control stopped (a background process group touched the tty)
can never go on by itself: it says `stopped (tty output)` / `stopped (tty input)`, not
only `active`, in its info, in the room and over the protocol."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import anyio
import pytest

from engine.states import SessionState
from tests.support import running, wait_state
from tests.tui_support import open_room, until

if TYPE_CHECKING:
    from pathlib import Path

    from engine.engine import Engine

pytestmark = pytest.mark.anyio


def in_background(argv: list[str]) -> str:
    """A job that runs `argv` in a process group of its own (so, in the background)."""
    code = f"import subprocess; subprocess.run({argv!r}, process_group=0)"
    return f'[[session]]\nname = "job"\ncommand = {json.dumps([sys.executable, "-c", code])}\n'


async def wait_detail(engine: Engine, detail: str, timeout: float = 15) -> None:
    with anyio.fail_after(timeout):
        while engine.session_info("job").detail != detail:
            await anyio.sleep(0.05)


async def test_a_background_write_to_the_tty_says_stopped_tty_output(tmp_path: Path) -> None:
    async with running(tmp_path, in_background(["stty", "sane"])) as engine:
        await wait_state(engine, "job", SessionState.ACTIVE)
        await wait_detail(engine, "stopped (tty output)")
        assert engine.session_info("job").state is SessionState.ACTIVE
        await engine.terminate("job")
        assert engine.session_info("job").detail == ""


async def test_a_background_read_says_stopped_tty_input_in_the_room(tmp_path: Path) -> None:
    async with open_room(tmp_path, in_background(["cat"])) as (engine, app, pilot):
        await wait_detail(engine, "stopped (tty input)")
        listing = app.session_list
        await until(pilot, lambda: str(listing.get_cell("job", "state")) == "stopped")
        assert "stopped (tty input)" in str(listing.get_cell("job", "exit / reason"))
        await engine.terminate("job")
