"""Which mailboxes a message goes to, by route.

Topics are resolved by the `TopicIndex` (through `MessageBus`'s cache), queues by name;
`receivers` names the sessions of the other routes.

topic     every subscription whose pattern matches (`sub:SESSION:PATTERN`)
direct    the receiver's inbox (`inbox:SESSION`)
broadcast every session's inbox but the sender's
group     every member's inbox but the sender's
queue     the queue (`queue:NAME`), where consumers compete
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from engine.bus.bus_errors import BadFrameError, UnknownTargetError
from engine.bus.message import OPERATOR
from engine.bus.topics import TopicIndex, check_topic

if TYPE_CHECKING:
    from collections.abc import Iterable


_SESSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}(#[0-9]{1,6})?")
"""A deck session's name, or a replica's (`name#3`): what a session elsewhere may be called."""


def check_elsewhere(name: str) -> str:
    """A session another engine may have (the bus linked to NATS): refuse what no deck could
    name, rather than send it where nobody will ever take it."""
    if not _SESSION_NAME.fullmatch(name):
        raise UnknownTargetError(f"no session named {name!r} here, and no deck can name one so")
    return name


def inbox(session: str) -> str:
    return f"inbox:{session}"


def subscription(session: str, pattern: str) -> str:
    return f"sub:{session}:{pattern}"


def queue(name: str) -> str:
    return f"queue:{name}"


class Router:
    def __init__(self, sessions: Iterable[str]) -> None:
        self.sessions = list(sessions)
        self._known = {*self.sessions, OPERATOR}
        self.topics = TopicIndex()
        self.groups: dict[str, set[str]] = {}

    def add_session(self, name: str) -> None:
        if name not in self._known:
            self.sessions.append(name)
            self._known.add(name)

    def known(self, name: str) -> bool:
        return name in self._known

    def check_session(self, name: str) -> str:
        if name not in self._known:
            known = ", ".join(self.sessions) or "none"
            raise UnknownTargetError(f"no session named {name!r} (known: {known}, {OPERATOR})")
        return name

    def receivers(self, route: str, target: str, sender: str) -> list[str]:
        """The sessions a direct, broadcast or group message goes to (its `receivers`)."""
        if route == "direct":
            return [self.check_session(target)]
        if route == "broadcast":
            return [s for s in self.sessions if s != sender]
        if route == "group":
            return [s for s in sorted(self.groups.get(target, ())) if s != sender]
        raise BadFrameError(f"unknown route {route!r}")

    def join(self, group: str, session: str) -> None:
        self.groups.setdefault(check_topic(group), set()).add(session)

    def leave(self, group: str, session: str) -> None:
        members = self.groups.get(group)
        if members is not None:
            members.discard(session)
            if not members:
                del self.groups[group]
