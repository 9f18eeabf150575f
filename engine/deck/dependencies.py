"""Dependencies between sessions: the conditions and the deck-time graph checks.

A dependency names a session of the deck (all of its replicas, when it has some) and a
condition:

* ``started``: every replica has started a process at least once;
* ``succeeded`` (the default): every replica completed;
* ``finished``: every replica reached a final state, whatever it was;
* ``ready``: every replica passed its `ready` probe (engine/deck/ready_spec.py) in its
  current attempt, so a service that is restarted is waited for again.

The run-time rule (when a dependency is met, or can no longer be) is scheduling/readiness.py.

A dependency that can no longer be met (a `succeeded` dependency failed, was stopped or
skipped; a `started` one ended without ever starting; a `ready` one ended, or was never
ready) makes the dependent `skipped`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

Condition = Literal["started", "succeeded", "finished", "ready"]


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
