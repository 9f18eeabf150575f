"""Work stealing between replicas: makespan with stealing vs without vs the ideal.

Why: a replicated worker pool fed through per-replica queues (`queue = { name = "tasks" }`,
docs/bus.md) finishes only when its slowest replica does. When work is pre-assigned
unevenly, or task sizes are skewed, the replicas holding the long tail decide the makespan
and the others sit idle; stealing should bring it close to total work / workers.

What it runs, through the real engine, bus socket and sessions: W replicas (each a Python
process speaking the socket protocol with the stdlib client: pop, sleep the task's size,
ack — a worker that acks after its work), T reliable tasks whose sizes come from a
heavy-tailed distribution (Pareto, α = 1.6, capped; seeded), pre-assigned unevenly (shard i
gets a share ∝ 1/i²: replica 1 holds ~60 % of them with 4 workers). The tasks are pushed
when every replica waits; the makespan is from the first push to the last ack (the bus's
balance counter), so replica start-up is not in it.

Arms (the same tasks, the same assignment): `steal = true`, `steal = false`, and the
ideal, total work / W (no schedule beats it; none reaches it when one task exceeds it).
`policy` is the stealing rule replayed with zero cost (each free replica takes its shard's
head, else the busiest shard's head): the part of the gap to the ideal that is the rule's
(a long task taken late), the rest being the engine's and the workers' round trips.

    python bench/stealing.py [--workers 4] [--tasks 60] [--mean 0.2] [--seed 7] [--dealt]

`--dealt`: no pre-assignment, the tasks pushed to `tasks` and dealt in turn by the bus; the
skew is then the task sizes' alone.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import anyio

from engine.deck.spec import parse_deck
from engine.engine import Engine, open_engine

ROOT = Path(__file__).resolve().parent.parent
WORKER = """\
import time
from engine.bus.bus_client import BusClient

with BusClient() as bus:
    while True:
        message = bus.call("queue.pop", queue="tasks")["message"]
        time.sleep(message["payload"])
        bus.ack(message["id"])
"""


@dataclass(frozen=True)
class Arm:
    makespan: float
    tasks: tuple[int, ...]  # completed per replica
    busy: tuple[float, ...]  # seconds per replica
    stolen: int
    tasks_cv: float
    busy_cv: float


def task_sizes(count: int, mean: float, seed: int) -> list[float]:
    """Pareto(α=1.6) scaled to `mean`, capped at 8× the mean: a few long tasks, many short."""
    rng = random.Random(seed)
    alpha = 1.6
    raw = [min(rng.paretovariate(alpha), 8 * alpha / (alpha - 1)) for _ in range(count)]
    scale = mean / (sum(raw) / count)
    return [round(r * scale, 3) for r in raw]


def assignment(count: int, workers: int, seed: int, dealt: bool = False) -> list[int]:
    """The shard (1-based) of each task: share ∝ 1/i², so replica 1 holds the most; or
    (`dealt`) in turn, as the bus deals a push to the queue's own name."""
    if dealt:
        return [i % workers + 1 for i in range(count)]
    rng = random.Random(seed + 1)
    weights = [1 / i**2 for i in range(1, workers + 1)]
    return rng.choices(range(1, workers + 1), weights, k=count)


def replay(sizes: list[float], shards: list[int], workers: int) -> float:
    """Makespan of the stealing rule with zero cost: event by event, a replica that frees
    takes the head of its own shard, else of the shard with the most waiting."""
    queues = [
        [s for s, k in zip(sizes, shards, strict=True) if k == i] for i in range(1, workers + 1)
    ]
    free = [0.0] * workers
    while any(queues):
        worker = min(range(workers), key=free.__getitem__)
        own = queues[worker] or max(queues, key=len)
        free[worker] += own.pop(0)
    return max(free)


def _deck(tmp: Path, workers: int, steal: bool) -> str:
    (tmp / "worker.py").write_text(WORKER)
    return f"""
max_parallel = {workers}

[pool]
size = {workers}
warm = {workers}

[[session]]
name = "w"
replicas = {workers}
queue = {{ name = "tasks", steal = {str(steal).lower()} }}
command = ["{sys.executable}", "{tmp / "worker.py"}"]
env = {{ PYTHONPATH = "{ROOT}" }}
"""


async def _waiting(engine: Engine, workers: int) -> None:
    with anyio.fail_after(120):
        shards = [engine.bus.mailbox(f"queue:tasks.{i}") for i in range(1, workers + 1)]
        while not all(box.consumers for box in shards):  # noqa: ASYNC110 (no event for it)
            await anyio.sleep(0.01)


async def run_arm(
    sizes: list[float], shards: list[int], workers: int, steal: bool, dealt: bool
) -> Arm:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "deck.toml"
        path.write_text(_deck(Path(tmp), workers, steal))
        deck = parse_deck(path.read_text(), path)
        async with open_engine(deck, Path(tmp) / "run") as engine:
            await engine.start_all()
            await _waiting(engine, workers)
            start = time.monotonic()
            for size, shard in zip(sizes, shards, strict=True):
                engine.bus_push("tasks" if dealt else f"tasks.{shard}", size, reliable=True)
            with anyio.fail_after(sum(sizes) * 3 + 60):
                acked = engine.bus.sharded["tasks"].completed
                while sum(acked.values()) < len(sizes):  # noqa: ASYNC110 (no event for it)
                    await anyio.sleep(0.005)
            makespan = time.monotonic() - start
            (balance,) = engine.bus_statistics().balance
            await engine.terminate_all()
    return Arm(
        makespan,
        tuple(w.completed for w in balance.workers),
        tuple(w.busy for w in balance.workers),
        balance.stolen,
        balance.tasks_cv,
        balance.busy_cv,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=60)
    parser.add_argument("--mean", type=float, default=0.2, help="mean task size, seconds")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dealt", action="store_true", help="push to `tasks`: dealt in turn")
    args = parser.parse_args()
    sizes = task_sizes(args.tasks, args.mean, args.seed)
    shards = assignment(args.tasks, args.workers, args.seed, args.dealt)
    total = sum(sizes)
    preassigned = [
        sum(s for s, k in zip(sizes, shards, strict=True) if k == i)
        for i in range(1, args.workers + 1)
    ]
    ideal = total / args.workers
    print(
        f"{args.tasks} tasks, {args.workers} replicas; sizes {min(sizes):.3f}-{max(sizes):.3f} s "
        f"(mean {total / args.tasks:.3f}, total {total:.2f} s); work per shard: "
        + " / ".join(f"{w:.2f}" for w in preassigned)
        + " s"
    )
    arms = {
        "stealing": anyio.run(run_arm, sizes, shards, args.workers, True, args.dealt),
        "no stealing": anyio.run(run_arm, sizes, shards, args.workers, False, args.dealt),
    }
    print(f"\n{'arm':<12} {'makespan':>9} {'/ ideal':>8} {'stolen':>7} {'tasks cv':>9} "
          f"{'busy cv':>8}  tasks per replica")  # fmt: skip
    for name, arm in arms.items():
        print(
            f"{name:<12} {arm.makespan:8.2f}s {arm.makespan / ideal:8.2f} {arm.stolen:7d} "
            f"{arm.tasks_cv:9.3f} {arm.busy_cv:8.3f}  {list(arm.tasks)}"
        )
    policy = replay(sizes, shards, args.workers)
    print(f"{'policy':<12} {policy:8.2f}s {policy / ideal:8.2f}   (the stealing rule at zero cost)")
    print(f"{'ideal':<12} {ideal:8.2f}s {1.0:8.2f}   (total work / replicas; the longest "
          f"task alone is {max(sizes):.2f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
