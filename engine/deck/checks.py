"""Deck-wide checks: problems no single [[session]] table can see on its own.

Duplicate names, a work queue declared by two sessions, unknown dependencies and cycles,
waiting on "ready" for a session with no `ready` probe, sessions bigger than the memory
budget, an unreachable `min_success`. They read the raw tables leniently, so they run (and
report) even when single sessions fail validation: the operator sees every problem at once.
Each problem is a pydantic error detail; `engine.deck.spec` turns them into report lines.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from engine.deck.dependencies import find_cycles, unknown_dependencies
from engine.deck.sizes import format_size, parse_size

__all__ = ["VERBATIM", "deck_problems", "with_problems"]

VERBATIM = frozenset(
    {
        "duplicate_name",
        "no_sessions",
        "unknown_dependency",
        "dependency_cycle",
        "no_ready_probe",
        "over_budget",
        "unreachable_min_success",
        "shared_work_queue",
        "unknown_host",
    }
)
"""Kinds whose message is the whole explanation (no "expected ..., got ..." added)."""


def deck_problems(value: object, deck: dict[str, Any]) -> list[InitErrorDetails]:
    """Every cross-session problem; `deck` holds the deck-level fields validated so far."""
    return _session_problems(value) + _budget_problems(value, deck) + _host_problems(value, deck)


def _host_problems(value: object, deck: dict[str, Any]) -> list[InitErrorDetails]:
    """A session's `host` must name a [[host]] table (unchecked while those are invalid)."""
    hosts = deck.get("hosts")
    if not isinstance(value, list) or not isinstance(hosts, list):
        return []
    known = [getattr(host, "name", None) for host in hosts]
    declared = ", ".join(str(name) for name in known) or "none declared"
    found = []
    for position, item in enumerate(value):
        wanted = item.get("host") if isinstance(item, dict) else None
        names = [wanted] if isinstance(wanted, str) else wanted if isinstance(wanted, list) else []
        for name in names:
            if isinstance(name, str) and name not in known:
                message = f"unknown host {name!r} (known: {declared}; add a [[host]] table)"
                found.append(_custom("unknown_host", message, value, (position, "host")))
    return found


def _session_problems(value: object) -> list[InitErrorDetails]:
    if value == []:
        return [_custom("no_sessions", "at least one [[session]] table is required", value)]
    if not isinstance(value, list):
        return []
    positions: defaultdict[str, list[str]] = defaultdict(list)
    for index, item in enumerate(value, start=1):
        name = item.get("name") if isinstance(item, dict) else getattr(item, "name", None)
        if isinstance(name, str):
            positions[name].append(f"session[{index}]")
    return (
        [
            _custom("duplicate_name", f"duplicate name {name!r} ({_and(where)})", value)
            for name, where in positions.items()
            if len(where) > 1
        ]
        + _graph_problems(value)
        + _queue_problems(value)
    )


def _queue_problems(items: list[object]) -> list[InitErrorDetails]:
    """A per-replica work queue belongs to one session: two would split its shards."""
    owners: defaultdict[str, list[str]] = defaultdict(list)
    for index, item in enumerate(items, start=1):
        queue = item.get("queue") if isinstance(item, dict) else None
        name = queue.get("name") if isinstance(queue, dict) else queue
        if isinstance(name, str):
            owners[name].append(f"session[{index}]")
    return [
        _custom("shared_work_queue", f"work queue {name!r} is declared twice ({_and(w)})", items)
        for name, w in owners.items()
        if len(w) > 1
    ]


def _graph_problems(items: list[object]) -> list[InitErrorDetails]:
    """Unknown dependencies and cycles, read leniently from the raw tables."""
    graph: dict[str, list[str]] = {}
    index: dict[str, int] = {}
    for position, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        deps = item.get("depends_on", []) if isinstance(item, dict) else []
        if isinstance(name, str) and isinstance(deps, list):
            graph.setdefault(name, []).extend(_dep_names(deps))
            index.setdefault(name, position)
    known = ", ".join(graph)
    found = [
        _custom("unknown_dependency", f"unknown session {dep!r} (known: {known})", items, loc)
        for name, dep in unknown_dependencies(graph)
        for loc in [(index[name], "depends_on")]
    ]
    cycles = [
        _custom("dependency_cycle", "dependency cycle " + " → ".join(cycle), items)
        for cycle in find_cycles(graph)
    ]
    return found + cycles + _ready_problems(items)


def _ready_problems(items: list[object]) -> list[InitErrorDetails]:
    """`condition = "ready"` needs the dependency to say what ready means."""
    tables = [item if isinstance(item, dict) else {} for item in items]
    probed = {t.get("name"): "ready" in t for t in tables if isinstance(t.get("name"), str)}
    found = []
    for position, table in enumerate(tables):
        deps = table.get("depends_on", [])
        for number, dep in enumerate(deps if isinstance(deps, list) else []):
            if not isinstance(dep, dict) or dep.get("condition") != "ready":
                continue
            name = dep.get("name")
            if probed.get(name) is False:
                message = f"waits for {name!r} to be ready, but {name!r} has no `ready` probe"
                loc = (position, "depends_on", number, "condition")
                found.append(_custom("no_ready_probe", message, items, loc))
    return found


def _dep_names(deps: list[object]) -> list[str]:
    names = [d.get("name") if isinstance(d, dict) else d for d in deps]
    return [n for n in names if isinstance(n, str)]


def _budget_problems(value: object, deck: dict[str, Any]) -> list[InitErrorDetails]:
    """Each session must fit the memory budget alone; min_success must be reachable."""
    if not isinstance(value, list):
        return []
    budget, found = deck.get("memory_budget"), []
    for position, item in enumerate(value):
        memory = item.get("memory") if isinstance(item, dict) else None
        try:
            size = parse_size(memory) if memory is not None else 0
        except ValueError:
            continue  # reported by the field itself
        if budget is not None and size > budget:
            message = f"{format_size(size)} exceeds memory_budget ({format_size(budget)})"
            found.append(_custom("over_budget", message, value, (position, "memory")))
    return found + _min_success_problems(value, deck.get("min_success"))


def _min_success_problems(items: list[object], wanted: object) -> list[InitErrorDetails]:
    possible = sum(
        item.get("replicas", 1) if isinstance(item.get("replicas", 1), int) else 1
        for item in items
        if isinstance(item, dict) and item.get("critical") is not True
    )
    if not isinstance(wanted, int) or wanted <= possible:
        return []
    message = f"min_success ({wanted}) exceeds the {possible} non-critical session(s)"
    return [_custom("unreachable_min_success", message, items)]


def _custom(
    kind: str, message: str, value: object, loc: tuple[int | str, ...] = ()
) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=value)


def _and(items: list[str]) -> str:
    return ", ".join(items[:-1]) + " and " + items[-1]


def with_problems(error: ValidationError, extra: list[InitErrorDetails]) -> ValidationError:
    if not extra:
        return error
    kept = [
        InitErrorDetails(
            type=PydanticCustomError(e["type"], e["msg"], e.get("ctx")),
            loc=e["loc"],
            input=e["input"],
        )
        for e in error.errors()
    ]
    return ValidationError.from_exception_data(error.title, kept + extra)
