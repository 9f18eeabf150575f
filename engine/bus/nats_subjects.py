"""Where each message travels on NATS: subjects, streams and consumer names of one namespace.

One namespace (the deck's `bus = "nats://host:4222/NAMESPACE"`, default `swarmdeck`) is one
shared bus; decks on other namespaces never see each other.

NS.t.TOPIC    best-effort topic        core NATS (requests too; their replies as direct)
NS.b          best-effort broadcast    core NATS
NS.d.SESSION  best-effort direct       core NATS
NS.rf.t.TOPIC reliable topic           stream NS_fanout (limits, 7 days): one consumer per engine
NS.rf.b       reliable broadcast       stream NS_fanout
NS.rd.SESSION reliable direct          stream NS_work (work queue): one consumer per session
NS.rq.QUEUE   queue message (any)      stream NS_work: one consumer per queue, every engine's
                                       puller competes on it

Topic, queue and session names are made of NATS-safe words (engine.bus.topics); consumer
names may not hold a dot, so `.` becomes `~` there (no bus name contains `~`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from engine.bus.message import Message

DEFAULT_NAMESPACE = "swarmdeck"
CORE_ROUTES = ("topic", "broadcast", "direct")


@dataclass(frozen=True, slots=True)
class Subjects:
    ns: str

    @classmethod
    def of(cls, url: str) -> Subjects:
        """The namespace a deck's bus URL names (its path), else the default one."""
        return cls(urlsplit(url).path.strip("/") or DEFAULT_NAMESPACE)

    @property
    def fanout_stream(self) -> str:
        return f"{self.ns}_fanout"

    @property
    def work_stream(self) -> str:
        return f"{self.ns}_work"

    def core(self) -> tuple[str, ...]:
        """What every engine subscribes to for best-effort messages."""
        return (f"{self.ns}.t.>", f"{self.ns}.b", f"{self.ns}.d.>")

    def of_message(self, message: Message) -> str:
        """The subject `message` is published on; queue messages always go to JetStream."""
        route, target, ns = message.route, message.target, self.ns
        if route == "queue":
            return f"{ns}.rq.{target}"
        to_session = route == "direct" or route == "reply"
        if message.reliable:
            if to_session:
                return f"{ns}.rd.{target}"
            return f"{ns}.rf.b" if route == "broadcast" else f"{ns}.rf.t.{target}"
        if to_session:
            return f"{ns}.d.{target}"
        return f"{ns}.b" if route == "broadcast" else f"{ns}.t.{target}"  # topic, request

    def durable(self, message: Message) -> bool:
        """Published to JetStream (awaiting its PubAck) rather than to core NATS."""
        return message.reliable or message.route == "queue"

    def fanout_filter(self) -> str:
        return f"{self.ns}.rf.>"

    def direct_filter(self, session: str) -> str:
        return f"{self.ns}.rd.{session}"

    def queue_filter(self, queue: str) -> str:
        return f"{self.ns}.rq.{queue}"


def consumer_name(kind: str, name: str) -> str:
    """A durable consumer's name: `e-ENGINE`, `d-SESSION`, `q-QUEUE` (no dots allowed)."""
    return f"{kind}-{name.replace('.', '~')}"
