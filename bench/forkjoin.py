"""Fork-join through the real engine: N short sessions on a pool of P terminals.

Why: the scheduler must keep a pool busy (sliding window, no batches) and cost next to
nothing per session. Each session runs `COMMAND`, a realistic short job (~100 ms: Python
starts, imports a few modules, waits 50 ms as on a network call, prints). For each N and P:

* sequential: the same N sessions with max_parallel = 1 (one after the other);
* parallel: max_parallel = P (the pool size);
* speedup = sequential / parallel; efficiency = speedup / min(N, P);
* overhead per session = (parallel wall − Σ command run times / min(N, P)) / N, the
  issue's definition, from each session's measured run time (as the launcher times it,
  like the shell's `time`: from just before the fork to right after the reap). It is
  the sum of two parts, also printed:
  - engine = (parallel wall − ideal) / N, where ideal is the makespan of a zero-cost
    replay: the same measured run times, in the order they started, each on the first
    free of min(N, P) slots. What dispatch, health checks and settling add.
  - tail = (ideal − Σ run times / min(N, P)) / N: slots idle while the last sessions
    finish (fork-join imbalance). It grows with the spread of the run times (on 2 cores
    with 10 CPU-bound jobs, ~0.4-0.9 s each) and no engine change removes it.

Pools are pre-warmed (warm = P) and the clock runs from `start_all` to `wait_finished`.

    python bench/forkjoin.py [--sizes 1,5,10,20,50] [--pools 5,10] [--markdown]
"""

from __future__ import annotations

import argparse
import heapq
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import anyio

from engine.deck.spec import parse_deck
from engine.engine import open_engine

# The interpreter swarmdeck runs on, by absolute path: a `python3` found on PATH may be a
# version-manager shim (pyenv's is a bash script) that doubles the command's CPU.
COMMAND = (
    f"{sys.executable} -c "
    '\\"import json, decimal, email.mime.text, time; '
    "time.sleep(0.05); print('done')\\\""
)


@dataclass(frozen=True)
class Run:
    wall: float
    busy: float  # sum of the sessions' run times
    ideal: float  # makespan of the same run times with zero engine cost


def replay(runs: list[tuple[float, float]], slots: int) -> float:
    """Makespan of (start, run time) jobs taken in start order, each on the first free slot."""
    free = [0.0] * slots
    for _, run_time in sorted(runs):
        heapq.heapreplace(free, free[0] + run_time)
    return max(free)


@dataclass(frozen=True)
class Row:
    sessions: int
    pool: int
    sequential: float
    parallel: Run

    @property
    def speedup(self) -> float:
        return self.sequential / self.parallel.wall

    @property
    def efficiency(self) -> float:
        return self.speedup / min(self.sessions, self.pool)

    @property
    def overhead_ms(self) -> float:
        concurrency = min(self.sessions, self.pool)
        return (self.parallel.wall - self.parallel.busy / concurrency) / self.sessions * 1000

    @property
    def engine_ms(self) -> float:
        return (self.parallel.wall - self.parallel.ideal) / self.sessions * 1000

    @property
    def tail_ms(self) -> float:
        return self.overhead_ms - self.engine_ms


def deck_text(sessions: int, pool: int, parallel: int) -> str:
    head = f"max_parallel = {parallel}\n[pool]\nsize = {pool}\nwarm = {pool}\n"
    body = "".join(f'[[session]]\nname = "s{i}"\ncommand = "{COMMAND}"\n' for i in range(sessions))
    return head + body


async def run_once(sessions: int, pool: int, parallel: int, base: Path) -> Run:
    directory = Path(tempfile.mkdtemp(prefix="fj-", dir=base))
    deck = parse_deck(deck_text(sessions, pool, parallel), directory / "deck.toml")
    async with open_engine(deck, directory / "run") as engine:
        start = time.perf_counter()
        await engine.start_all()
        ok = await engine.wait_finished()
        wall = time.perf_counter() - start
        infos = engine.list_sessions()
    if not ok:
        raise SystemExit(f"a session failed: see {directory / 'run' / 'summary.json'}")
    runs = [(a.started_at or 0.0, a.run_time or 0.0) for i in infos for a in i.attempts]
    busy = sum(run_time for _, run_time in runs)
    return Run(wall, busy, replay(runs, min(sessions, parallel)))


async def measure(sizes: list[int], pools: list[int], base: Path) -> list[Row]:
    rows = []
    for n in sizes:
        sequential = (await run_once(n, max(pools), 1, base)).wall
        for pool in pools:
            parallel = await run_once(n, pool, pool, base)
            rows.append(Row(n, pool, sequential, parallel))
            print(f"  N={n:>3} pool={pool:>2}: {parallel.wall:6.2f}s", flush=True)
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| sessions | pool | sequential (s) | parallel (s) | speedup | efficiency | "
        "overhead / session (ms) | of which engine | of which tail |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.sessions} | {r.pool} | {r.sequential:.2f} | {r.parallel.wall:.2f} | "
        f"{r.speedup:.2f}× | {r.efficiency:.0%} | {r.overhead_ms:.2f} | {r.engine_ms:.2f} | "
        f"{r.tail_ms:.2f} |"
        for r in rows
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,5,10,20,50")
    parser.add_argument("--pools", default="5,10")
    parser.add_argument("--markdown", action="store_true", help="print only the table")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    pools = [int(x) for x in args.pools.split(",")]
    with tempfile.TemporaryDirectory(prefix="forkjoin-") as base:
        rows = anyio.run(measure, sizes, pools, Path(base))
    print(table(rows))
    big = [r for r in rows if r.sessions == max(sizes)]
    if big:
        overhead = statistics.median(r.overhead_ms for r in big)
        engine = statistics.median(r.engine_ms for r in big)
        print(
            f"\noverhead per session at N={max(sizes)}: median {overhead:.2f} ms "
            f"(engine {engine:.2f} ms, the rest fork-join tail)"
        )


if __name__ == "__main__":
    main()
