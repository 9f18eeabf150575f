"""Dependencies between sessions: the deck-time graph checks and the run-time readiness rule.

A dependency names a session of the deck (all of its replicas, when it has some) and a
condition:

* ``started``: every replica has started a process at least once;
* ``succeeded`` (the default): every replica completed;
* ``finished``: every replica reached a final state, whatever it was.

A dependency that can no longer be met (a `succeeded` dependency failed, was stopped or
skipped; a `started` one ended without ever starting) makes the dependent `skipped`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from engine.states import FINAL_STATES, SessionState

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

Condition = Literal["started", "succeeded", "finished"]
Readiness = Literal["ready", "wait", "skip"]


@dataclass(frozen=True)
class Outcome:
    """What the scheduler knows about one replica of a dependency."""

    state: SessionState
    ever_started: bool
    reason: str = ""


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
    if condition == "succeeded":
        return outcome.state is SessionState.COMPLETED
    return outcome.state in FINAL_STATES


def _cannot_meet(condition: Condition, outcome: Outcome) -> str:
    if outcome.state not in FINAL_STATES or _meets(condition, outcome):
        return ""
    detail = f" ({outcome.reason})" if outcome.reason else ""
    if condition == "started":
        return f"{outcome.state} without starting{detail}"
    return f"{outcome.state}{detail}"


# --- deck-time checks ------------------------------------------------------------------


def unknown_dependencies(graph: Mapping[str, Iterable[str]]) -> list[tuple[str, str]]:
    """(session, missing dependency) pairs, in deck order."""
    return [(name, dep) for name, deps in graph.items() for dep in deps if dep not in graph]


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Each dependency cycle once, as a path that returns to its start: [a, b, c, a]."""
    edges = {name: [d for d in deps if d in graph] for name, deps in graph.items()}
    done: set[str] = set()
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    for root in edges:
        if root not in done:
            _walk(root, edges, [], done, cycles, seen)
    return cycles


def _walk(
    node: str,
    edges: Mapping[str, list[str]],
    path: list[str],
    done: set[str],
    cycles: list[list[str]],
    seen: set[frozenset[str]],
) -> None:
    """Depth-first; a dependency already on `path` closes a cycle."""
    path.append(node)
    for dep in edges[node]:
        if dep in path:
            cycle = [*path[path.index(dep) :], dep]
            if frozenset(cycle) not in seen:
                seen.add(frozenset(cycle))
                cycles.append(cycle)
        elif dep not in done:
            _walk(dep, edges, path, done, cycles, seen)
    path.pop()
    done.add(node)
