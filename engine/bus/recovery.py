"""What outlives the engine: queue and group declarations, and the journal's replay at start.

`declare` records a queue's or group's ACL (and a queue's order and limits) and journals it;
`recover` rebuilds declarations, mailboxes, in-flight attempts and dead letters from the
journal of a previous engine on the same run, so every acknowledged reliable message not yet
acked by its receiver is delivered again: each counts as a redelivery (reason `restart`),
its attempt count carried over from the journal.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from engine.bus.acl import AccessRule
from engine.bus.bus_errors import BadFrameError
from engine.bus.delivery import DeadLetter
from engine.bus.message import OPERATOR, Message
from engine.bus.queues import Entry, Order
from engine.bus.router import queue
from engine.bus.topics import check_topic
from engine.events import BusMessageRedelivered

MAX_ACK_TIMEOUT = 24 * 3600.0
MAX_ATTEMPTS = 1000

if TYPE_CHECKING:
    from engine.bus.broker import MessageBus
    from engine.bus.journal import Journal
    from engine.bus.queues import Mailbox


def declare(bus: MessageBus, session: str, kind: str, name: str, config: dict[str, Any]) -> None:
    """Create or reconfigure a queue or group: ACL, and for queues order/limits."""
    check_topic(name)
    if kind not in ("queue", "group"):
        raise BadFrameError(f"declare a queue or a group, not {kind!r}")
    current = bus.acl.rule(kind, name)
    rule = AccessRule(
        tuple(config.get("publishers") or current.publishers),
        tuple(config.get("consumers") or current.consumers),
        current.owner if bus.acl.declared(kind, name) else session,
    )
    if kind == "queue":
        _check_limits(config, bus.limits.queue_capacity)
    bus.acl.set(kind, name, rule, by=session)
    if kind == "queue":
        sharded = bus.sharded.get(name)
        for box in sharded.boxes if sharded else (bus.mailbox(queue(name)),):
            configure(box, config)
    if bus.journal is not None:
        saved = {k: v for k, v in config.items() if v is not None}
        saved.update(publishers=rule.publishers, consumers=rule.consumers, owner=rule.owner)
        bus.journal.declare(kind, name, json.dumps(saved))


def _check_limits(config: dict[str, Any], max_capacity: int) -> None:
    """Each limit a number in its range (bool is not one): a clear error, not a broken queue."""
    ranges = {
        "capacity": (int, 1, max_capacity),
        "ack_timeout": (float, 0.001, MAX_ACK_TIMEOUT),
        "max_attempts": (int, 1, MAX_ATTEMPTS),
    }
    for key, (kind, low, high) in ranges.items():
        value = config.get(key)
        if value is None:
            continue
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or (kind is int and not isinstance(value, int)) or not low <= value <= high:
            raise BadFrameError(f"{key} must be between {low:g} and {high:g}, got {value!r}")


def configure(box: Mailbox, config: dict[str, Any]) -> None:
    order = config.get("order")
    if order is not None and Order(order) is not box.order:
        if len(box) or box.in_flight:
            raise BadFrameError(f"{box.name} is not empty; its order stays {box.order}")
        box.order = Order(order)
    box.capacity = config.get("capacity") or box.capacity
    box.ack_timeout = config.get("ack_timeout") or box.ack_timeout
    box.max_attempts = config.get("max_attempts") or box.max_attempts


def recover(bus: MessageBus, journal: Journal) -> None:
    """Rebuild the bus from `journal` (an engine restarting on the same run)."""
    for kind, name, config in journal.declarations():
        saved = json.loads(config)
        rule = AccessRule(tuple(saved.pop("publishers")), tuple(saved.pop("consumers")))
        bus.acl.set(kind, name, replace(rule, owner=saved.pop("owner")), by=OPERATOR)
        if kind == "queue":
            configure(bus.mailbox(queue(name)), saved)
    for name, body, attempts, dead in journal.rows():
        message = Message.from_dict(json.loads(body))
        if message.reply_to is not None:
            bus.requests.remember(message)
        if dead is not None:
            bus.dead.add(DeadLetter(message, name, dead, attempts))
            continue
        box = bus.mailbox(name)
        box.requeue(Entry(message, attempt=attempts))
        box.enqueued += 1
        _redelivered(bus, box, message.id, attempts + 1)
        if message.not_before:
            bus.delayed.add(box)


def _redelivered(bus: MessageBus, box: Mailbox, msg_id: str, attempt: int) -> None:
    """Count and report a message owed again after a restart (`attempt`: its next one)."""
    box.redelivered += 1
    bus.redeliveries += 1
    if bus.traffic.spend("redelivered"):
        bus.emit(BusMessageRedelivered(id=msg_id, mailbox=box.name, attempt=attempt,
                                       reason="restart"))  # fmt: skip
