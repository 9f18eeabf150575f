"""`swarmdeck pause|resume RUN --match GLOB` and `swarmdeck parallel VALUE [RUN]`: the
room's run-wide actions from a shell, as an operator of a running engine."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse


async def fleet_command(args: argparse.Namespace) -> int:
    from engine.remote import find_engine, open_remote_engine

    entry = find_engine(args.run)
    client = f"swarmdeck {args.command}"
    async with open_remote_engine(Path(entry.socket), client=client) as remote:
        if args.command == "parallel":
            value: int | str = "auto" if args.value == "auto" else _number(args.value)
            await remote.set_parallel(value)
            print(f"swarmdeck: max_parallel of {entry.run_id} set to {value}")
            return 0
        act = remote.pause_all if args.command == "pause" else remote.resume_all
        names = await act(args.match)
        done = "paused" if args.command == "pause" else "resumed"
        print(f"swarmdeck: {done} {len(names)}: {', '.join(names) or 'none matched'}")
    return 0


def _number(text: str) -> int:
    from engine import SchedulerError

    try:
        return int(text)
    except ValueError:
        raise SchedulerError(
            f"max_parallel must be a whole number or 'auto', not {text!r}"
        ) from None
