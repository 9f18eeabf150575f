"""Sessions on a host beyond the local pool's size: a whole deck's makespan, end to end.

Why: a host's slots are its own `pool.size`, not the local `max_parallel` (docs/scheduling.md,
"Places"), so a deck with a local pool of 1 and `[[host]] pool = { size = 8 }` should run
its 8 remote sessions at once. Each arm runs a fresh engine on a deck of N sessions of
`sleep T` on the host (a loopback sshd started for the run, tests/sshd_support.py) with a
local pool of 1; the clock runs from `start_all` to `wait_finished`, and the peak of the
host's `slots_in_use` is read every 20 ms. Arms vary the host's size: size 1 is what every
host size gave before places (the local pool of 1 bounded all), so it is the baseline.
Another arm mixes N local sessions in, after the remote ones in file order, to show that
they run beside the host's, not behind them.

    python bench/host_slots.py [--sessions 8] [--time 1.0] [--sizes 1,4,8]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.deck.spec import parse_deck
from engine.engine import open_engine
from tests.sshd_support import Sshd, running_sshd  # a bench-only, test-only helper


def deck_text(sshd: Sshd, size: int, count: int, seconds: float, local: int) -> str:
    text = (
        'name = "bench"\n[pool]\nsize = 1\nwarm = 1\n'
        f'[[host]]\nname = "box"\nssh = "{sshd.address}"\nidentity = "{sshd.identity}"\n'
        f'known_hosts = "{sshd.known_hosts}"\npool = {{ size = {size}, warm = 1 }}\n'
        f"max_channels = {max(10, size + 1)}\n"
        f'[[session]]\nname = "remote"\nreplicas = {count}\ncommand = "sleep {seconds}"\n'
        'host = "box"\n'
    )
    if local:
        text += f'[[session]]\nname = "local"\nreplicas = {local}\ncommand = "sleep {seconds}"\n'
    return text


async def arm(work: Path, text: str) -> tuple[float, int]:
    """The makespan of one run and the peak of the host's slots in use."""
    path = work / f"deck-{time.monotonic_ns()}.toml"
    path.write_text(text)
    deck = parse_deck(text, path)
    peak = 0
    async with open_engine(deck, work / f"run-{time.monotonic_ns()}") as engine:
        with anyio.fail_after(60):  # the warm connection, before the clock starts
            while True:
                if engine.host_statistics()[0].connected:
                    break
                await anyio.sleep(0.02)
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                nonlocal peak
                while True:
                    peak = max(peak, engine.host_statistics()[0].slots_in_use)
                    await anyio.sleep(0.02)

            tg.start_soon(watch)
            t0 = time.monotonic()
            await engine.start_all()
            ok = await engine.wait_finished()
            makespan = time.monotonic() - t0
            tg.cancel_scope.cancel()
    if not ok:
        raise SystemExit(f"bench: a session failed in {work}")
    return makespan, peak


async def main(args: argparse.Namespace) -> None:
    sizes = [int(size) for size in args.sizes.split(",")]
    count, seconds = args.sessions, args.time
    print(f"## {count} sessions of sleep {seconds} on a loopback host, local pool 1, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, running_sshd(Path(tmp) / "sshd") as sshd:
        work = Path(tmp)
        for size in sizes:
            makespan, peak = await arm(work, deck_text(sshd, size, count, seconds, 0))
            print(f"host size {size:>2}: {makespan:6.2f} s  peak slots in use {peak}")
        size = max(sizes)
        text = deck_text(sshd, size, count, seconds, local=2)
        makespan, peak = await arm(work, text)
        print(
            f"host size {size:>2} + 2 local after them: {makespan:6.2f} s  peak slots in use {peak}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8, help="sessions on the host")
    parser.add_argument("--time", type=float, default=1.0, help="seconds each sleeps")
    parser.add_argument("--sizes", default="1,4,8", help="host pool sizes to compare")
    anyio.run(main, parser.parse_args())
