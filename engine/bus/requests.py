"""Request/reply: a request is a message on a topic with `reply_to`; the first reply wins.

A requester waits (with a timeout) for a reply correlated by the request's id; a reply that
arrives after the requester stopped waiting goes to its inbox for a minute. The bus remembers
the last 10,000 replyable messages, so `reply` can find who asked. Linked to NATS
(docs/bus.md), requests reach other engines' subscribers and their replies come back.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import anyio

from engine.bus.bus_errors import BusTimeoutError, NoRespondersError, UnknownTargetError
from engine.bus.message import Message, Receipt, new_id
from engine.bus.router import inbox

if TYPE_CHECKING:
    from engine.bus.broker import MessageBus

_REMEMBERED = 10_000


class _Reply:
    def __init__(self) -> None:
        self.event = anyio.Event()
        self.message: Message | None = None


class Requests:
    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus
        self._replyable: OrderedDict[str, Message] = OrderedDict()
        self._waiting: dict[str, _Reply] = {}

    def remember(self, message: Message) -> None:
        """A message someone may `reply` to (it has `reply_to`)."""
        self._replyable[message.id] = message
        if len(self._replyable) > _REMEMBERED:
            self._replyable.popitem(last=False)

    async def request(
        self, sender: str, topic: str, payload: Any, timeout: float, **options: Any
    ) -> Message:
        """Publish a request and wait for the first reply (correlated by the request id)."""
        reply = _Reply()
        receipt = self.bus.send("request", topic, sender, payload, reply_to=sender, **options)
        if receipt.mailboxes == 0:
            raise NoRespondersError(f"nobody is subscribed to {topic!r}")
        self._waiting[receipt.id] = reply
        try:
            with anyio.move_on_after(timeout):
                await reply.event.wait()
        finally:
            del self._waiting[receipt.id]
        if reply.message is None:
            raise BusTimeoutError(f"no reply to {receipt.id} on {topic!r} within {timeout:g}s")
        return reply.message

    def reply(self, sender: str, msg_id: str, payload: Any, *, sized: bool = False) -> Receipt:
        """Answer message `msg_id`: straight to a waiting requester, else to its inbox."""
        bus = self.bus
        original = self._replyable.get(msg_id)
        if original is None or original.reply_to is None:
            raise UnknownTargetError(f"no request {msg_id!r} to reply to (unknown or too old)")
        correlation = original.correlation_id or original.id
        waiting = self._waiting.get(correlation)
        live = waiting is not None and waiting.message is None
        message = Message(
            new_id(), "reply", original.reply_to, sender, payload, (original.reply_to,),
            correlation_id=correlation,
            ttl=None if live else 60.0,  # nobody waits any more: kept a minute in the inbox
        )  # fmt: skip
        if not sized:
            message.check_size()
        if waiting is not None and live:
            waiting.message = message
            waiting.event.set()
            bus.count(message, 1)
            return Receipt(message.id, 1)
        if bus.outbox is not None and not bus.router.known(original.reply_to):
            return Receipt(message.id, bus.route(message, (bus.outbox,)))  # another engine's
        box = bus.mailbox(inbox(original.reply_to))
        return Receipt(message.id, bus.route(message, (box,)))

    def arrived(self, message: Message) -> int:
        """A reply another engine's session sent (engine.bus.nats_inbound): to the waiting
        requester, else to its inbox, where it is kept a minute (its ttl)."""
        waiting = self._waiting.get(message.correlation_id or "")
        if waiting is not None and waiting.message is None:
            waiting.message = message
            waiting.event.set()
            self.bus.count(message, 1)
            return 1
        if not self.bus.router.known(message.target):
            return 0
        return self.bus.route(message, (self.bus.mailbox(inbox(message.target)),))
