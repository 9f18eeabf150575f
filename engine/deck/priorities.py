"""The one priority vocabulary: sessions (scheduling order), bus messages (delivery order)
and the room's sort all use these four names and this order. Standard library only, so the
`swarmdeck bus` command can offer the same choices without importing anything heavy."""

from __future__ import annotations

from enum import IntEnum
from typing import Literal, get_args


class Priority(IntEnum):
    """Lower sorts first: critical overtakes everything queued before it."""

    CRITICAL = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3


PriorityName = Literal["critical", "high", "normal", "low"]  # the deck's spelling (pydantic)
PRIORITY_NAMES: tuple[str, ...] = tuple(p.name.lower() for p in Priority)
PRIORITY_RANK: dict[str, int] = {p.name.lower(): p.value for p in Priority}
if get_args(PriorityName) != PRIORITY_NAMES:  # pragma: no cover (a mistake in this file)
    raise AssertionError(f"PriorityName {get_args(PriorityName)} != {PRIORITY_NAMES}")
