"""The wire commands, one function each, registered in the explicit `COMMANDS` table.

A handler gets the connection's `Peer` (who is asking) and the decoded frame, validates the
fields it needs (clear `bad-frame` errors naming the field) and returns the reply fields.
Blocking commands (pop, recv, request) run as their own task so the connection keeps
reading. docs/protocol.md documents each command; keep the two in step.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from engine.bus.bus_errors import BadFrameError
from engine.bus.frames import MAX_PAYLOAD, field
from engine.bus.message import check_delay, check_ttl, parse_priority
from engine.bus.queues import Order
from engine.bus.topics import check_pattern

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from engine.bus.broker import MessageBus, Receipt
    from engine.bus.message import Message

Frame = dict[str, Any]
Reply = dict[str, Any]


class Peer(Protocol):
    """What a command may use of its connection."""

    bus: MessageBus
    session: str
    size: int  # length of the frame being handled, in bytes

    def subscribe(self, pattern: str, window: int, count: int | None) -> int: ...
    def unsubscribe(self, sub: int) -> None: ...


class Command(NamedTuple):
    run: Callable[[Peer, Frame], Reply] | Callable[[Peer, Frame], Awaitable[Reply]]
    blocking: bool


def _options(peer: Peer, frame: Frame) -> dict[str, Any]:
    """The message options a frame sets (absent ones keep `MessageBus.send`'s defaults)."""
    options: dict[str, Any] = {"sized": peer.size <= MAX_PAYLOAD}
    if "reliable" in frame:
        options["reliable"] = field(frame, "reliable", bool, False)
    if "priority" in frame:
        options["priority"] = parse_priority(field(frame, "priority", str, "normal"))
    if "ttl" in frame:
        options["ttl"] = check_ttl(field(frame, "ttl", float, None))
    if "correlation_id" in frame:
        options["correlation_id"] = field(frame, "correlation_id", str, None)
    return options


def _payload(frame: Frame) -> Any:
    if "payload" not in frame:
        raise BadFrameError("field 'payload' is required (any JSON value, null included)")
    return frame["payload"]


def _receipt(receipt: Receipt) -> Reply:
    return {"id": receipt.id, "delivered": receipt.mailboxes}


def publish(peer: Peer, f: Frame) -> Reply:
    topic = field(f, "topic", str)
    return _receipt(peer.bus.send("topic", topic, peer.session, _payload(f), **_options(peer, f)))


def send(peer: Peer, f: Frame) -> Reply:
    to = field(f, "to", str)
    return _receipt(peer.bus.send("direct", to, peer.session, _payload(f), **_options(peer, f)))


def broadcast(peer: Peer, f: Frame) -> Reply:
    return _receipt(peer.bus.send("broadcast", "*", peer.session, _payload(f), **_options(peer, f)))


def group_send(peer: Peer, f: Frame) -> Reply:
    group = field(f, "group", str)
    return _receipt(peer.bus.send("group", group, peer.session, _payload(f), **_options(peer, f)))


def group_join(peer: Peer, f: Frame) -> Reply:
    peer.bus.join(peer.session, field(f, "group", str))
    return {}


def group_leave(peer: Peer, f: Frame) -> Reply:
    peer.bus.leave(peer.session, field(f, "group", str))
    return {}


def _declare(peer: Peer, f: Frame, kind: str) -> Reply:
    config: dict[str, Any] = {
        key: _strings(f, key, "session-name patterns") for key in ("publishers", "consumers")
    }
    if kind == "queue":
        order = field(f, "order", str, None)
        if order is not None and order not in set(Order):
            raise BadFrameError(f"order must be fifo, lifo, priority or delay, got {order!r}")
        config.update(
            order=order,
            capacity=field(f, "capacity", int, None),
            ack_timeout=field(f, "ack_timeout", float, None),
            max_attempts=field(f, "max_attempts", int, None),
        )
    peer.bus.declare(peer.session, kind, field(f, kind, str), **config)
    return {}


def queue_push(peer: Peer, f: Frame) -> Reply:
    name = field(f, "queue", str)
    delay = check_delay(field(f, "delay", float, 0.0))
    options = _options(peer, f)
    return _receipt(peer.bus.send("queue", name, peer.session, _payload(f), delay=delay, **options))


def _message_reply(message: Message, attempt: int) -> Reply:
    return {"message": {**message.to_dict(), "attempt": attempt}}


def _strings(f: Frame, key: str, what: str) -> list[str] | None:
    """An optional field that must be a list of strings (`what` names them in the error)."""
    values: list[Any] | None = field(f, key, list, None)
    if values is not None and not all(isinstance(v, str) for v in values):
        raise BadFrameError(f"field {key!r} must be a list of {what}")
    return values


def _wait(f: Frame) -> float | None:
    wait: float | None = field(f, "wait", float, None)
    if wait is not None and wait < 0:
        raise BadFrameError(f"wait must be >= 0 seconds, got {wait}")
    return wait


async def _take(peer: Peer, f: Frame, kind: str, name: str) -> Reply:
    """Wait for one message of the session's inbox or of a queue (`recv`, `queue.pop`)."""
    box = peer.bus.consumable(peer.session, kind, name)
    entry = await peer.bus.take(peer.session, box, _wait(f), field(f, "ack", bool, False))
    return _message_reply(entry.message, entry.attempt)


async def queue_pop(peer: Peer, f: Frame) -> Reply:
    return await _take(peer, f, "queue", field(f, "queue", str))


async def recv(peer: Peer, f: Frame) -> Reply:
    return await _take(peer, f, "inbox", peer.session)


def subscribe(peer: Peer, f: Frame) -> Reply:
    pattern = check_pattern(field(f, "pattern", str))
    window = field(f, "window", int, 256)
    count = field(f, "count", int, None)
    if window < 1 or (count is not None and count < 1):
        raise BadFrameError("window and count must be at least 1")
    return {"sub": peer.subscribe(pattern, window, count)}


def unsubscribe(peer: Peer, f: Frame) -> Reply:
    peer.unsubscribe(field(f, "sub", int))
    return {}


async def request(peer: Peer, f: Frame) -> Reply:
    timeout = field(f, "timeout", float, 10.0)
    if not 0 < timeout <= 3600:
        raise BadFrameError(f"timeout must be between 0 and 3600 seconds, got {timeout}")
    topic = field(f, "topic", str)
    options = _options(peer, f)
    reply = await peer.bus.request(peer.session, topic, _payload(f), timeout, **options)
    return _message_reply(reply, 1)


def reply(peer: Peer, f: Frame) -> Reply:
    msg_id = field(f, "id", str)
    return _receipt(
        peer.bus.reply(peer.session, msg_id, _payload(f), sized=peer.size <= MAX_PAYLOAD)
    )


def ack(peer: Peer, f: Frame) -> Reply:
    """`id`, or `ids` (a list, acked in order; the first unknown one stops with an error)."""
    if "ids" not in f:
        peer.bus.ack(peer.session, field(f, "id", str))
        return {}
    ids = _strings(f, "ids", "message ids")
    if ids is None:
        raise BadFrameError("field 'ids' must be a list of message ids")
    for msg_id in ids:
        peer.bus.ack(peer.session, msg_id)
    return {}


def nack(peer: Peer, f: Frame) -> Reply:
    peer.bus.nack(peer.session, field(f, "id", str), field(f, "requeue", bool, True))
    return {}


def dlq_list(peer: Peer, f: Frame) -> Reply:
    letters = [
        {
            "message": d.message.to_dict(),
            "mailbox": d.mailbox,
            "reason": d.reason,
            "attempts": d.attempts,
            "at": d.at,
        }
        for d in peer.bus.dead_letters(peer.session)
    ]
    return {"letters": letters}


def dlq_replay(peer: Peer, f: Frame) -> Reply:
    return {"replayed": peer.bus.replay(_strings(f, "ids", "message ids"), peer.session)}


def stats(peer: Peer, f: Frame) -> Reply:
    return {"stats": asdict(peer.bus.statistics())}


def ping(peer: Peer, f: Frame) -> Reply:
    return {"session": peer.session}


COMMANDS: dict[str, Command] = {
    "ping": Command(ping, False),
    "publish": Command(publish, False),
    "send": Command(send, False),
    "broadcast": Command(broadcast, False),
    "group.send": Command(group_send, False),
    "group.join": Command(group_join, False),
    "group.leave": Command(group_leave, False),
    "group.declare": Command(lambda p, f: _declare(p, f, "group"), False),
    "queue.declare": Command(lambda p, f: _declare(p, f, "queue"), False),
    "queue.push": Command(queue_push, False),
    "queue.pop": Command(queue_pop, True),
    "recv": Command(recv, True),
    "subscribe": Command(subscribe, False),
    "unsubscribe": Command(unsubscribe, False),
    "request": Command(request, True),
    "reply": Command(reply, False),
    "ack": Command(ack, False),
    "nack": Command(nack, False),
    "dlq.list": Command(dlq_list, False),
    "dlq.replay": Command(dlq_replay, False),
    "stats": Command(stats, False),
}
