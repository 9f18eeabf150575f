"""The control room on a served engine: `swarmdeck attach` and `swarmdeck run`.

The room is only a client: killing it (even with SIGKILL) or its terminal leaves the
engine and every session running. Quitting asks: detach (say how to come back) or stop
all (shut the engine down and wait for it to exit). A viewer just detaches.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from engine import FINAL_STATES
from engine.remote import open_remote_engine
from themes import DEFAULT_THEME
from tui.app import run_control_room
from tui.cli.daemon import shutdown_and_wait
from tui.user_config import UserConfig
from tui.wording import agreeing, counted

if TYPE_CHECKING:
    from engine.remote import Registration


def run_attached(
    entry: Registration, role: str = "operator", config: UserConfig | None = None
) -> int:
    """Attach the control room to `entry` as `role` until the person quits; 1 when the
    engine went away under it (stopped elsewhere, or the connection was dropped)."""
    return anyio.run(_attached, entry, role, config or UserConfig())


async def _attached(entry: Registration, role: str, config: UserConfig) -> int:
    client = f"control room (pid {os.getpid()})"
    async with open_remote_engine(Path(entry.socket), role, client=client) as remote:
        choice = await run_control_room(
            remote,
            read_only=remote.role != "operator",
            theme=config.theme or DEFAULT_THEME,
            keys=config.keys,
            attention=config.attention,
        )
        lost = remote.lost
        running = sum(info.state not in FINAL_STATES for info in remote.list_sessions())
        if choice == "stop":
            print(f"swarmdeck: stopping every session of {entry.run_id}…", flush=True)
            await shutdown_and_wait(remote)
            print(f"swarmdeck: stopped {entry.run_id} (run directory {entry.run_dir})")
            return 0
    if lost is not None:
        print(f"swarmdeck: detached, the engine went away ({lost})", file=sys.stderr)
        return 1
    keep = f"{counted(running, 'session')} {agreeing(running, 'keeps', 'keep')} running"
    print(
        f"swarmdeck: detached from {entry.run_id}; {keep}.\n"
        f"  swarmdeck attach {entry.run_id}   # back to the control room\n"
        f"  swarmdeck stop {entry.run_id}     # stop every session and the engine\n"
        f"  run directory: {entry.run_dir}"
    )
    return 0
