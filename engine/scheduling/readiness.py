"""The run-time dependency rule: is a dependency met, still pending, or no longer possible?

The conditions themselves are deck vocabulary (deck/dependencies.py); what a replica's state
means for them is decided here, where session states are known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from engine.states import FINAL_STATES, SessionState

if TYPE_CHECKING:
    from collections.abc import Sequence

    from engine.deck.dependencies import Condition

Readiness = Literal["ready", "wait", "skip"]


@dataclass(frozen=True)
class Outcome:
    """What the scheduler knows about one replica of a dependency."""

    state: SessionState
    ever_started: bool
    reason: str = ""
    ready: bool = False
    """Its `ready` probe passed in the current attempt."""


def readiness(condition: Condition, replicas: Sequence[Outcome]) -> tuple[Readiness, str]:
    """Decide for one dependency; the text explains a `skip`."""
    for outcome in replicas:
        blocked = _cannot_meet(condition, outcome)
        if blocked:
            return "skip", blocked
    if all(_meets(condition, outcome) for outcome in replicas):
        return "ready", ""
    return "wait", ""


def _meets(condition: Condition, outcome: Outcome) -> bool:
    if condition == "started":
        return outcome.ever_started
    if condition == "ready":
        return outcome.ready and outcome.state not in FINAL_STATES
    if condition == "succeeded":
        return outcome.state is SessionState.COMPLETED
    return outcome.state in FINAL_STATES


def _cannot_meet(condition: Condition, outcome: Outcome) -> str:
    if outcome.state not in FINAL_STATES or _meets(condition, outcome):
        return ""
    detail = f" ({outcome.reason})" if outcome.reason else ""
    if condition == "started":
        return f"{outcome.state} without starting{detail}"
    if condition == "ready":
        return f"{outcome.state} before it was ready{detail}"
    return f"{outcome.state}{detail}"
