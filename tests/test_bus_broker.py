"""The bus's delivery rules, in-process: routes, orders, reliability, limits, ACL, stats."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import pytest

from engine.bus.broker import MessageBus
from engine.bus.bus_errors import (
    AccessDeniedError,
    BusTimeoutError,
    NoRespondersError,
    PayloadTooLargeError,
    QueueFullError,
    UnknownTargetError,
)
from engine.bus.frames import MAX_PAYLOAD
from engine.bus.message import OPERATOR
from engine.bus.router import inbox, queue, subscription
from engine.deck.priorities import Priority
from engine.events import (
    BusMessageAcked,
    BusMessageDeadLettered,
    BusMessageDropped,
    BusMessageExpired,
    BusMessageRedelivered,
    BusMessageRouted,
    BusTrafficSampled,
)

if TYPE_CHECKING:
    from engine.events import Event

pytestmark = pytest.mark.anyio
SESSIONS = ["a", "b", "c", "worker-1", "worker-2", "intruder"]
SESSIONS_BUT_A = tuple(SESSIONS[1:])


def make_bus(**limits: Any) -> tuple[MessageBus, list[Event]]:
    events: list[Event] = []
    return MessageBus(SESSIONS, events.append, **limits), events


async def take(bus: MessageBus, session: str, q: str | None = None, ack: bool = True) -> Any:
    box = bus.consumable(session, "queue" if q else "inbox", q or session)
    return (await bus.take(session, box, 1.0, ack)).message.payload


async def test_wildcards_match_one_word_with_star_and_the_rest_with_gt() -> None:
    bus, _ = make_bus()
    star, rest = bus.subscribe("a", "build.*"), bus.subscribe("b", "build.>")
    for topic in ("build", "build.x", "build.x.y"):
        bus.send("topic", topic, "c", topic)
    assert [star.get_nowait().payload] == ["build.x"]  # type: ignore[union-attr]
    assert star.get_nowait() is None
    got = [rest.get_nowait(), rest.get_nowait(), rest.get_nowait()]
    assert [m.payload for m in got if m] == ["build.x", "build.x.y"]


async def test_direct_broadcast_and_group_reach_the_right_inboxes() -> None:
    bus, _ = make_bus()
    bus.send("direct", "b", "a", "to-b")
    bus.send("broadcast", "*", "a", "all")
    bus.join("b", "team")
    bus.join("c", "team")
    bus.send("group", "team", "b", "team-msg")
    assert [await take(bus, "b"), await take(bus, "b")] == ["to-b", "all"]
    assert [await take(bus, "c"), await take(bus, "c")] == ["all", "team-msg"]
    assert len(bus.mailbox(inbox("a"))) == 0  # the sender is left out of its broadcast
    with pytest.raises(UnknownTargetError, match="no session named 'zed'"):
        bus.send("direct", "zed", "a", 1)


async def test_receivers_name_the_sessions_of_direct_group_and_broadcast_messages() -> None:
    bus, _ = make_bus()
    bus.join("b", "team")
    bus.join("c", "team")
    bus.send("direct", "b", "a", 1)
    bus.send("group", "team", "b", 2)
    bus.send("broadcast", "*", "a", 3)
    bus.send("queue", "jobs", "a", 4)
    waiting = {s: [item[3].message for item in sorted(bus.mailbox(s).heap)]
               for s in (inbox("b"), inbox("c"), queue("jobs"))}  # fmt: skip
    assert [m.receivers for m in waiting[inbox("b")]] == [("b",), SESSIONS_BUT_A]
    assert [m.receivers for m in waiting[inbox("c")]] == [("c",), SESSIONS_BUT_A]
    assert [m.receivers for m in waiting[queue("jobs")]] == [()]
    topic = bus.subscribe("c", "t")
    bus.send("topic", "t", "a", 5)
    assert topic.get_nowait().receivers == ()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("order", "expected"),
    [("fifo", [1, 2, 3]), ("lifo", [3, 2, 1]), ("priority", [2, 3, 1])],
)
async def test_queue_orders(order: str, expected: list[int]) -> None:
    bus, _ = make_bus()
    bus.declare(OPERATOR, "queue", "jobs", order=order)
    for n, prio in ((1, Priority.LOW), (2, Priority.CRITICAL), (3, Priority.NORMAL)):
        bus.send("queue", "jobs", "a", n, priority=prio)
    assert [await take(bus, "b", "jobs") for _ in expected] == expected


async def test_a_delayed_message_is_not_deliverable_before_its_time() -> None:
    bus, _ = make_bus()
    bus.declare(OPERATOR, "queue", "later", order="delay")
    bus.send("queue", "later", "a", "slow", delay=0.3)
    bus.send("queue", "later", "a", "soon", delay=0.05)
    box = bus.consumable("b", "queue", "later")
    with pytest.raises(BusTimeoutError):
        await bus.take("b", box, 0.01, True)
    async with anyio.create_task_group() as tg:
        tg.start_soon(bus.run, 0.01)
        start = time.monotonic()
        assert (await bus.take("b", box, 2, True)).message.payload == "soon"
        assert (await bus.take("b", box, 2, True)).message.payload == "slow"
        assert time.monotonic() - start >= 0.25
        tg.cancel_scope.cancel()


async def test_competing_consumers_share_a_queue_without_duplicates() -> None:
    bus, _ = make_bus()
    got: dict[str, list[int]] = {"worker-1": [], "worker-2": []}

    async def work(name: str) -> None:
        box = bus.consumable(name, "queue", "jobs")
        try:
            while True:
                got[name].append((await bus.take(name, box, 0.2, True)).message.payload)
                await anyio.lowlevel.checkpoint()
        except BusTimeoutError:  # the queue stayed empty: done
            return

    async with anyio.create_task_group() as tg:
        tg.start_soon(work, "worker-1")
        tg.start_soon(work, "worker-2")
        await anyio.sleep(0.01)
        for n in range(100):
            bus.send("queue", "jobs", "a", n, reliable=True)
            await anyio.lowlevel.checkpoint()
    assert sorted(got["worker-1"] + got["worker-2"]) == list(range(100))
    assert got["worker-1"]
    assert got["worker-2"]


async def test_unacked_messages_are_redelivered_then_dead_lettered_and_can_be_replayed() -> None:
    bus, events = make_bus(ack_timeout=0.05, max_attempts=2)
    bus.send("queue", "jobs", "a", "job", reliable=True)
    box = bus.consumable("b", "queue", "jobs")
    first = await bus.take("b", box, 1, ack=False)
    await anyio.sleep(0.06)
    bus.sweep()
    second = await bus.take("b", box, 1, ack=False)
    assert (first.message.id, second.attempt) == (second.message.id, 2)
    await anyio.sleep(0.06)
    bus.sweep()
    assert [(d.reason, d.attempts) for d in bus.dead_letters()] == [("max-attempts", 2)]
    assert bus.statistics().dlq_size == 1
    assert any(isinstance(e, BusMessageRedelivered) for e in events)
    assert any(isinstance(e, BusMessageDeadLettered) for e in events)
    assert bus.replay() == 1
    again = await bus.take("b", box, 1, ack=True)
    assert again.message.id == first.message.id
    assert any(isinstance(e, BusMessageAcked) for e in events)
    with pytest.raises(UnknownTargetError, match="not awaiting an ack"):
        bus.ack("b", again.message.id)


async def test_ttl_is_enforced_by_the_sweep_and_expired_reliable_messages_are_dead_letters() -> (
    None
):
    bus, events = make_bus()
    bus.send("direct", "b", "a", "stale", ttl=0.01)
    bus.send("direct", "b", "a", "stale-reliable", ttl=0.01, reliable=True)
    await anyio.sleep(0.02)
    bus.sweep()
    assert len(bus.mailbox(inbox("b"))) == 0
    assert sum(isinstance(e, BusMessageExpired) for e in events) == 2
    assert [d.reason for d in bus.dead_letters()] == ["expired"]


async def test_a_full_mailbox_refuses_reliable_and_drops_oldest_best_effort() -> None:
    bus, events = make_bus(queue_capacity=3)
    for n in range(3):
        bus.send("queue", "q", "a", n)
    bus.send("queue", "q", "a", 3)  # drops 0
    bus.send("queue", "q", "a", "r1", reliable=True)  # evicts best-effort 1
    assert bus.statistics().drops == 2
    assert sum(isinstance(e, BusMessageDropped) for e in events) == 2
    bus.send("queue", "q", "a", "r2", reliable=True)
    bus.send("queue", "q", "a", "r3", reliable=True)
    with pytest.raises(QueueFullError, match="queue:q is full"):
        bus.send("queue", "q", "a", "r4", reliable=True)
    assert [await take(bus, "b", "q") for _ in range(3)] == ["r1", "r2", "r3"]


async def test_every_drop_is_counted_in_its_mailbox_as_well_as_in_the_total() -> None:
    bus, events = make_bus(queue_capacity=1)
    bus.dead.capacity = 1
    bus.send("queue", "q", "a", 0)
    bus.send("queue", "q", "a", 1)  # overflow: drops 0
    sub = bus.subscribe("b", "t")
    sub_box = bus.mailbox(subscription("b", "t"))
    sub.credit = 0  # takes nothing: what it is sent waits in its mailbox
    bus.send("topic", "t", "a", "waiting")
    sub.close()  # unsubscribed: drops "waiting"
    bus.send("direct", "c", "a", "x", reliable=True)
    bus.send("direct", "c", "a", "y", reliable=True)
    bus.nack("c", (await bus.take("c", bus.consumable("c", "inbox", "c"), 1, False)).message.id,
             requeue=False)  # fmt: skip
    bus.nack("c", (await bus.take("c", bus.consumable("c", "inbox", "c"), 1, False)).message.id,
             requeue=False)  # dlq-full: drops the first dead letter  # fmt: skip
    reasons = [e.reason for e in events if isinstance(e, BusMessageDropped)]
    assert reasons == ["overflow", "unsubscribed", "dlq-full"]
    boxes = (bus.mailbox(queue("q")), sub_box, bus.mailbox(inbox("c")))
    assert [box.dropped for box in boxes] == [1, 1, 1]
    assert bus.statistics().drops == 3


async def test_a_slow_subscriber_never_blocks_the_publisher_or_a_fast_one() -> None:
    bus, _ = make_bus(capacity=10)
    slow = bus.subscribe("a", "ticks", window=1)
    fast = bus.subscribe("b", "ticks")
    for n in range(1000):
        bus.send("topic", "ticks", "c", n)
        assert fast.get_nowait() is not None
    slow_box = bus.mailbox("sub:a:ticks")
    assert len(slow_box) == 10
    assert slow_box.dropped == 1000 - 11
    assert [slow.get_nowait().payload for _ in range(2)] == [0, 990]  # type: ignore[union-attr]


async def test_acl_refuses_publishers_and_consumers_not_listed() -> None:
    bus, _ = make_bus()
    bus.declare("a", "queue", "secret", publishers=["a"], consumers=["worker-*"])
    bus.send("queue", "secret", "a", 1)
    with pytest.raises(AccessDeniedError, match="'intruder' may not publish"):
        bus.send("queue", "secret", "intruder", 2)
    with pytest.raises(AccessDeniedError, match="may not consume"):
        bus.consumable("intruder", "queue", "secret")
    with pytest.raises(AccessDeniedError, match="belongs to 'a'"):
        bus.declare("intruder", "queue", "secret", consumers=["*"])
    assert await take(bus, "worker-2", "secret") == 1
    bus.declare("a", "group", "ops", consumers=["b"])
    with pytest.raises(AccessDeniedError):
        bus.join("c", "ops")


async def test_only_the_engine_publishes_on_its_own_topics() -> None:
    """A session forging `swarmdeck.alerts` would make agents act on a lie: refused, with
    what to do instead; the operator (the engine) publishes there, sessions subscribe."""
    bus, _ = make_bus()
    alerts = bus.subscribe("a", "swarmdeck.>")
    with pytest.raises(
        AccessDeniedError, match=r"'b' may not publish on topic 'swarmdeck\.alerts'"
    ):
        bus.send("topic", "swarmdeck.alerts", "b", {"alert": "saturation"})
    bus.send("topic", "swarmdeck.alerts", OPERATOR, {"alert": "saturation"})
    got = alerts.get_nowait()
    assert got is not None  # only the engine's
    assert got.payload == {"alert": "saturation"}
    bus.send("topic", "swarmdeckish.news", "b", 1)  # only the exact prefix is reserved


async def test_request_reply_correlates_and_times_out() -> None:
    bus, _ = make_bus()
    with pytest.raises(NoRespondersError):
        await bus.request("a", "math.double", 2, timeout=0.1)
    sub = bus.subscribe("b", "math.*")

    async def responder() -> None:
        request = await sub.get()
        bus.reply("b", request.id, request.payload * 2)

    async with anyio.create_task_group() as tg:
        tg.start_soon(responder)
        answer = await bus.request("a", "math.double", 21, timeout=1)
    assert answer.payload == 42
    assert answer.route == "reply"
    assert answer.sender == "b"
    with pytest.raises(BusTimeoutError, match="no reply"):
        await bus.request("a", "math.double", 1, timeout=0.05)


async def test_oversized_payloads_are_refused() -> None:
    bus, _ = make_bus()
    with pytest.raises(PayloadTooLargeError):
        bus.send("topic", "t", "a", "x" * (MAX_PAYLOAD + 1))


async def test_statistics_report_depth_in_flight_and_latency() -> None:
    bus, events = make_bus()
    sub = bus.subscribe(OPERATOR, "t")
    bus.send("topic", "t", "a", 1, reliable=True)
    bus.send("queue", "jobs", "a", 2)
    stats = bus.statistics()
    assert stats.in_flight == 1
    assert stats.published == 2
    boxes = {b.name: b for b in stats.mailboxes}
    assert boxes[queue("jobs")].depth == 1
    assert boxes["sub:@operator:t"].in_flight == 1
    assert stats.latency_p99 >= stats.latency_p50 >= 0
    assert [t.topic for t in stats.topics] == ["t"]
    assert sum(isinstance(e, BusMessageRouted) for e in events) == 2
    sub.close()


async def test_past_the_event_budget_routed_messages_are_counted_in_a_traffic_sample() -> None:
    bus, events = make_bus()
    bus.traffic.period = 0.0
    sub = bus.subscribe("b", "load.>", window=10_000)
    for n in range(bus.traffic.budget + 50):
        bus.send("topic", "load.tick", "a", n)
    assert sum(isinstance(e, BusMessageRouted) for e in events) == bus.traffic.budget
    bus.sweep()
    sample = next(e for e in events if isinstance(e, BusTrafficSampled))
    assert (sample.routed, sample.unreported) == (bus.traffic.budget + 50, {"routed": 50})
    assert sample.topics == {"load.tick": bus.traffic.budget + 50}
    assert len(sub.drain_nowait()) == bus.traffic.budget + 50
    bus.send("topic", "load.tick", "a", "after the tick")  # the tick refilled the budget
    assert isinstance(events[-1], BusMessageRouted)


async def test_fan_out_reaches_every_subscriber_and_respects_their_windows() -> None:
    bus, _ = make_bus(capacity=5)
    fast, slow = bus.subscribe("a", "fan.*"), bus.subscribe("b", "fan.>", window=2)
    for n in range(10):
        bus.send("topic", "fan.out", "c", n)
    assert [m.payload for m in fast.drain_nowait()] == list(range(10))
    assert [m.payload for m in slow.drain_nowait()] == [0, 1]  # its window; then its mailbox
    assert [m.payload for m in slow.drain_nowait()] == [5, 6]  # oldest dropped past capacity
    stats = {b.name: b for b in bus.statistics().mailboxes}
    assert (stats["sub:a:fan.*"].enqueued, stats["sub:a:fan.*"].delivered) == (10, 10)
    assert stats["sub:b:fan.>"].drops == 3
    slow.close()
    bus.send("topic", "fan.out", "c", "only a")
    assert [m.payload for m in fast.drain_nowait()] == ["only a"]
