"""What travels on the bus: `Message`, its priorities, reliabilities and limits.

A plain slotted dataclass rather than a pydantic model: messages are built and routed on
the hot path (hundreds of thousands per second in-process), validated once at the edge
(`engine.bus.commands` for frames, `MessageBus` for in-process callers).
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from engine.bus.errors import BadFrameError, PayloadTooLargeError
from engine.bus.frames import MAX_PAYLOAD

OPERATOR = "@operator"
"""The sender name of the operator; `@` keeps it apart from every deck session name."""
MAX_TTL = 7 * 24 * 3600.0
MAX_DELAY = 7 * 24 * 3600.0

BEST_EFFORT = "best-effort"
RELIABLE = "reliable"


class Priority(IntEnum):
    """Lower sorts first: critical messages overtake everything queued before them."""

    CRITICAL = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3

    @classmethod
    def parse(cls, name: str) -> Priority:
        try:
            return cls[name.upper()]
        except KeyError:
            raise BadFrameError(
                f"priority must be critical, high, normal or low, got {name!r}"
            ) from None


_prefix = secrets.token_hex(3)
_counter = itertools.count(1)


def new_id() -> str:
    """Unique across engine restarts (random prefix per process) and cheap to make."""
    return f"m{_prefix}-{next(_counter)}"


def payload_size(payload: Any) -> int:
    """Encoded size of a payload; raises when it is not JSON or over MAX_PAYLOAD."""
    try:
        size = len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    except (TypeError, ValueError) as exc:
        raise BadFrameError(f"payload is not JSON: {exc}") from None
    if size > MAX_PAYLOAD:
        raise PayloadTooLargeError(f"payload of {size} bytes is over the {MAX_PAYLOAD} limit")
    return size


@dataclass(slots=True, eq=False)
class Message:
    """One message; `route` says how it was addressed, `target` to what."""

    id: str
    route: str  # topic | direct | broadcast | group | queue | request | reply
    target: str  # topic name, session, group or queue
    sender: str
    payload: Any
    receivers: tuple[str, ...] = ()
    priority: Priority = Priority.NORMAL
    reliable: bool = False
    ttl: float | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    timestamp: float = field(default_factory=time.time)
    not_before: float = 0.0
    _wire: bytes | None = field(default=None, repr=False)

    @property
    def expires_at(self) -> float:
        return self.timestamp + self.ttl if self.ttl is not None else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "route": self.route,
            "topic": self.target,
            "sender": self.sender,
            "receivers": list(self.receivers),
            "priority": self.priority.name.lower(),
            "reliability": RELIABLE if self.reliable else BEST_EFFORT,
            "ttl": self.ttl,
            "correlation_id": self.correlation_id,
            "reply_to": self.reply_to,
            "timestamp": self.timestamp,
            "not_before": self.not_before or None,
            "payload": self.payload,
        }

    def wire(self) -> bytes:
        """The JSON object (no newline), encoded once however many receivers get it."""
        if self._wire is None:
            self._wire = json.dumps(self.to_dict(), separators=(",", ":")).encode()
        return self._wire

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        """Inverse of `to_dict` (the journal's rows)."""
        return cls(
            id=data["id"],
            route=data["route"],
            target=data["topic"],
            sender=data["sender"],
            payload=data["payload"],
            receivers=tuple(data.get("receivers") or ()),
            priority=Priority[data["priority"].upper()],
            reliable=data["reliability"] == RELIABLE,
            ttl=data.get("ttl"),
            correlation_id=data.get("correlation_id"),
            reply_to=data.get("reply_to"),
            timestamp=data["timestamp"],
            not_before=data.get("not_before") or 0.0,
        )


def check_ttl(ttl: float | None) -> float | None:
    if ttl is not None and not 0 < ttl <= MAX_TTL:
        raise BadFrameError(f"ttl must be between 0 and {MAX_TTL:g} seconds, got {ttl}")
    return ttl


def check_delay(delay: float) -> float:
    if not 0 <= delay <= MAX_DELAY:
        raise BadFrameError(f"delay must be between 0 and {MAX_DELAY:g} seconds, got {delay}")
    return delay
