"""Per-replica work queues: one shard per worker, and work stealing between them.

A deck's `queue = { name = "tasks" }` on a replicated session gives replica i its own
queue mailbox, `queue:tasks.i`. A push to `tasks` goes to the shards in turn; a push to
`tasks.i` to that shard (a producer may pre-assign). Replica i's pop of `tasks` takes from
its own shard. With `steal`, a worker whose shard is empty is *idle*, and takes the oldest
ready task of the busiest shard (the one with the most waiting): at once when it asks, or
as soon as a task waits in a shard whose owner is busy.

One task at a time, from the head: the broker is one process, so a steal costs what a pop
costs (none of the lock contention that makes thread pools steal half a deque at once),
and taking one task at the last moment never hands a thief a batch it then sits on while
others idle; with skewed task sizes that is what keeps the makespan near the ideal.

A stolen task stays its shard's: it is in flight from the victim's mailbox, so its ack
removes the victim's journal row, and a nack, an ack timeout or the thief's end puts it
back in the victim's shard, to be taken again by its owner or another thief. Acks,
redelivery, attempts and dead letters are the reliable queue's, unchanged.
"""

from __future__ import annotations

import statistics as stats
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.bus.bus_errors import BadFrameError
from engine.bus.router import queue

if TYPE_CHECKING:
    from collections.abc import Sequence

    from engine.bus.broker import MessageBus
    from engine.bus.queues import Consumer, Mailbox


@dataclass(frozen=True, slots=True)
class WorkerBalance:
    """One worker of a sharded queue: tasks done (acked; best-effort: taken), stolen by
    it, waiting in its shard, and seconds spent between taking and acking tasks."""

    session: str
    shard: str
    completed: int
    stolen: int
    waiting: int
    busy: float


@dataclass(frozen=True, slots=True)
class QueueBalance:
    """The spread of tasks over a sharded queue's workers (docs/contention.md)."""

    queue: str
    steal: bool
    workers: tuple[WorkerBalance, ...]
    completed: int
    stolen: int
    tasks_min: int
    tasks_max: int
    tasks_mean: float
    tasks_stdev: float
    tasks_cv: float
    """stdev / mean of tasks per worker: 0 is perfectly even (0 too when none is done)."""
    busy_cv: float
    """The same over busy seconds: with skewed task sizes, the figure makespan follows."""


def _cv(values: Sequence[float]) -> tuple[float, float, float]:
    mean = stats.fmean(values) if values else 0.0
    stdev = stats.pstdev(values) if len(values) > 1 else 0.0
    return mean, stdev, (stdev / mean if mean else 0.0)


class ShardedQueue:
    """The shards of one queue, by owner session, and the balance counters."""

    def __init__(self, bus: MessageBus, name: str, owners: Sequence[str], steal: bool) -> None:
        self.bus = bus
        self.name = name
        self.steal = steal
        self.owners = tuple(owners)
        self.shards: dict[str, Mailbox] = {}
        for index, owner in enumerate(owners, start=1):
            box = self.shards[owner] = bus.mailbox(queue(f"{name}.{index}"))
            box.sharded = self
        self.boxes = tuple(self.shards.values())
        self._turn = 0
        self.completed: Counter[str] = Counter()
        self.stolen: Counter[str] = Counter()
        self.busy: defaultdict[str, float] = defaultdict(float)

    def next_box(self) -> Mailbox:
        """Where a push to the queue's own name goes: the shards in turn."""
        box = self.boxes[self._turn % len(self.boxes)]
        self._turn += 1
        return box

    def shard_of(self, session: str) -> Mailbox:
        box = self.shards.get(session)
        if box is None:
            raise BadFrameError(
                f"queue {self.name!r} has one shard per replica ({', '.join(self.owners)}); "
                f"{session!r} has none: pop a shard by name ({self.name}.1 ..)"
            )
        return box

    def done(self, session: str, since: float) -> None:
        """A task taken at `since` (monotonic) was acked (or, best-effort, taken)."""
        self.completed[session] += 1
        self.busy[session] += time.monotonic() - since

    # -- stealing ---------------------------------------------------------------------------
    def steal_for(self, consumer: Consumer, own: Mailbox) -> None:
        """`consumer` waits on its empty shard `own`: give it the busiest shard's head."""
        if not self.steal or own.heap or consumer.credit <= 0:
            return
        now = time.time()
        ready = [b for b in self.boxes if b is not own and b.ready(now)]
        if ready:
            self._hand(consumer, max(ready, key=len), now)

    def lend(self, box: Mailbox) -> None:
        """Tasks wait in `box` that its own consumers cannot take: idle workers steal them."""
        if not self.steal:
            return
        now = time.time()
        for thief_box in self.boxes:
            if not box.ready(now):
                return
            if thief_box is box or thief_box.heap:
                continue
            while box.ready(now) and (thief := thief_box.next_consumer()) is not None:
                self._hand(thief, box, now)

    def _hand(self, thief: Consumer, victim: Mailbox, now: float) -> None:
        entry = victim.pop()
        if entry.message.expires_at <= now:
            self.bus.reliability.expire(entry, victim)
            return
        self.stolen[thief.session] += 1
        self.bus.dispatch.hand(thief, entry, victim)

    def balance(self) -> QueueBalance:
        workers = tuple(
            WorkerBalance(
                s, b.name, self.completed[s], self.stolen[s], len(b), round(self.busy[s], 3)
            )
            for s, b in self.shards.items()
        )
        others = [s for s in self.completed if s not in self.shards]
        workers += tuple(
            WorkerBalance(s, "", self.completed[s], self.stolen[s], 0, round(self.busy[s], 3))
            for s in others
        )
        tasks = [w.completed for w in workers]
        mean, stdev, cv = _cv(tasks)
        return QueueBalance(
            self.name, self.steal, workers, sum(tasks), sum(self.stolen.values()),
            min(tasks, default=0), max(tasks, default=0), round(mean, 3), round(stdev, 3),
            round(cv, 4), round(_cv([w.busy for w in workers])[2], 4),
        )  # fmt: skip
