"""The program each browser room runs: `python -m tui.web.room SOCKET --role ROLE`.

The control room attached to the engine's control socket with the role the web server
chose from the link's token, under Textual's WebDriver (stdin/stdout carry its packets,
so nothing here may print). "Stop all" asks the engine to shut down and leaves at once:
the engine's end stops the web server, which ends this room.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import anyio

from engine.remote import open_remote_engine
from tui.app import run_control_room


async def _room(socket: Path, role: str) -> int:
    client = f"browser room (pid {os.getpid()})"
    async with open_remote_engine(socket, role, client=client) as remote:
        choice = await run_control_room(remote, read_only=remote.role != "operator")
        if choice == "stop":
            await remote.shutdown()
        return 1 if remote.lost is not None else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tui.web.room")
    parser.add_argument("socket", type=Path, help="the engine's control socket")
    parser.add_argument("--role", choices=("operator", "viewer"), required=True)
    args = parser.parse_args(argv)
    return anyio.run(_room, args.socket, args.role)


if __name__ == "__main__":
    raise SystemExit(main())
