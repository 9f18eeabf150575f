"""`max_parallel = "auto"` against the best fixed setting, on I/O-bound and CPU-bound work.

Why: auto must find the best level by itself, fast enough that the search costs little,
and come back down when more parallelism only slows every session (issue 15: auto within
15 % of the best fixed setting on both decks). Each arm runs a fresh engine on a pre-warmed
pool; the clock runs from `start_all` to `wait_finished`.

* I/O-bound: N sessions of `sleep T` (pool 16): the best fixed level is the pool size.
* CPU-bound: N sessions of a pure-Python loop (~0.25 s of CPU each, pool 8): past the
  cores, more at once only shares the same cores.

For auto it also prints the levels it went through (ParallelismAdjusted events, with the
time since the start) and the reason of the last change.

    python bench/parallelism.py [--io 240] [--io-time 0.25] [--cpu 40] [--loops 1500000]
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
from engine.events import ParallelismAdjusted

CPU_JOB = "python3 -c 'n = 0\nfor i in range({loops}): n += i'"


def deck_text(command: str, count: int, pool: int, parallel: str) -> str:
    return (
        f'name = "bench"\nmax_parallel = {parallel}\n[pool]\nsize = {pool}\nwarm = {pool}\n'
        f'[[session]]\nname = "job"\nreplicas = {count}\ncommand = "{command}"\n'
    )


async def arm(
    work: Path, command: str, count: int, pool: int, parallel: str
) -> tuple[float, list[str]]:
    """The makespan of one run, and (auto) the levels it went through."""
    text = deck_text(command.replace('"', '\\"').replace("\n", "\\n"), count, pool, parallel)
    path = work / f"deck-{parallel.strip(chr(34))}.toml"
    path.write_text(text)
    deck = parse_deck(text, path)
    steps: list[str] = []
    run_dir = work / f"run-{time.monotonic_ns()}"
    async with open_engine(deck, run_dir) as engine, anyio.create_task_group() as tg:
        events = engine.subscribe()
        t0 = time.monotonic()

        async def watch() -> None:
            with events:
                async for event in events:
                    if isinstance(event, ParallelismAdjusted):
                        since = time.monotonic() - t0
                        steps.append(f"{since:5.1f}s {event.new:>2}  {event.reason}")

        tg.start_soon(watch)
        await engine.start_all()
        ok = await engine.wait_finished()
        makespan = time.monotonic() - t0
        tg.cancel_scope.cancel()
    if not ok:
        raise SystemExit(f"bench: a session failed in {run_dir}")
    return makespan, steps


async def compare(
    work: Path, title: str, command: str, count: int, pool: int, levels: list[int]
) -> bool:
    print(f"\n## {title}: {count} sessions, pool {pool}, {os.cpu_count()} cores")
    fixed = {}
    for level in levels:
        fixed[level], _ = await arm(work, command, count, pool, str(level))
        print(f"fixed {level:>2}: {fixed[level]:6.2f} s")
    auto, steps = await arm(work, command, count, pool, '"auto"')
    best = min(fixed, key=lambda level: fixed[level])
    ratio = auto / fixed[best]
    print(f"auto    : {auto:6.2f} s  = {ratio:.2f} × best fixed ({best})")
    for step in steps:
        print(f"    {step}")
    return ratio <= 1.15


async def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        io_ok = await compare(
            work, f"I/O-bound (sleep {args.io_time})", f"sleep {args.io_time}", args.io, 16,
            [4, 8, 16],
        )  # fmt: skip
        cpu = CPU_JOB.format(loops=args.loops)
        cpu_ok = await compare(work, "CPU-bound (python loop)", cpu, args.cpu, 8, [1, 2, 4, 8])
    print(f"\nauto within 15 % of the best fixed: I/O {io_ok}, CPU {cpu_ok}")
    return 0 if io_ok and cpu_ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--io", type=int, default=240, help="I/O-bound sessions")
    parser.add_argument("--io-time", type=float, default=0.25, help="seconds each sleeps")
    parser.add_argument("--cpu", type=int, default=40, help="CPU-bound sessions")
    parser.add_argument("--loops", type=int, default=1_500_000, help="iterations per CPU job")
    raise SystemExit(anyio.run(main, parser.parse_args()))
