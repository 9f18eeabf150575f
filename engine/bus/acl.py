"""Who may publish to and consume from a queue or a group.

A rule lists session-name patterns (shell style: `worker-*`) for publishers and consumers;
the operator is always allowed. The first declaration of a queue or group owns its rule:
later changes must come from the same session or the operator, so a worker cannot open a
queue another session locked down. Topics and inboxes are open to every session, except
that only the engine (the operator) publishes under `swarmdeck.`: those topics carry what
the engine says (`swarmdeck.alerts`), and an agent reacting to a forged alert would act on
a lie.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from engine.bus.bus_errors import AccessDeniedError
from engine.bus.message import OPERATOR


@dataclass(frozen=True, slots=True)
class AccessRule:
    publishers: tuple[str, ...] = ("*",)
    consumers: tuple[str, ...] = ("*",)
    owner: str = OPERATOR

    def allows(self, session: str, action: str) -> bool:
        patterns = self.publishers if action == "publish" else self.consumers
        return session == OPERATOR or any(fnmatchcase(session, p) for p in patterns)


OPEN = AccessRule()
RESERVED = "swarmdeck."  # topics only the engine publishes on


def check_reserved(topic: str, sender: str) -> None:
    """Refuse a session's publish on a topic the engine speaks on."""
    if topic.startswith(RESERVED) and sender != OPERATOR:
        raise AccessDeniedError(
            f"{sender!r} may not publish on topic {topic!r}: topics under {RESERVED!r} are the "
            "engine's own (subscribe to them instead)"
        )


class AccessControl:
    def __init__(self) -> None:
        self._rules: dict[tuple[str, str], AccessRule] = {}

    def rule(self, kind: str, name: str) -> AccessRule:
        return self._rules.get((kind, name), OPEN)

    def declared(self, kind: str, name: str) -> bool:
        return (kind, name) in self._rules

    def set(self, kind: str, name: str, rule: AccessRule, by: str) -> None:
        """Declare or change a rule; only its owner or the operator may change it."""
        current = self._rules.get((kind, name))
        if current is not None and by not in (current.owner, OPERATOR) and current != rule:
            raise AccessDeniedError(
                f"{kind} {name!r} belongs to {current.owner!r}; {by!r} may not change its rule"
            )
        self._rules[(kind, name)] = rule

    def check(self, kind: str, name: str, session: str, action: str) -> None:
        """Raise AccessDeniedError unless `session` may `action` ("publish"/"consume")."""
        rule = self._rules.get((kind, name))
        if rule is not None and not rule.allows(session, action):
            allowed = ", ".join(rule.publishers if action == "publish" else rule.consumers)
            raise AccessDeniedError(
                f"{session!r} may not {action} on {kind} {name!r} (allowed: {allowed or 'nobody'})"
            )
