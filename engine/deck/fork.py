"""`fork` and `add`: new sessions made at run time, from an existing session's spec or
from a session table of their own.

The copy keeps every field of the source (command, cwd, env, priority, dependencies,
retries, workspace...) except `replicas` (a fork is one session); `overrides` may set any
session field and is validated exactly like a deck table. `env` overrides are merged over
the source's env rather than replacing it. A fork of a replica copies its template, so it
does not inherit SWARMDECK_REPLICA; the default name is ``<template>-fork-<n>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import ValidationError

from engine.deck.problems import problem_lines
from engine.deck.sizes import format_size
from engine.deck.spec import SessionSpec
from engine.errors import SessionError

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from engine.deck.spec import DeckSpec


def fork_spec(
    source: SessionSpec,
    template: str,
    overrides: Mapping[str, object],
    deck: DeckSpec,
    taken: Collection[str],
) -> SessionSpec:
    """The validated spec of the fork; SessionError says what is wrong with `overrides`."""
    data = source.model_dump()
    data.update(name=template, replicas=1)
    data.update(overrides)
    env = overrides.get("env")
    data["env"] = {**source.env, **env} if isinstance(env, dict) else data["env"]
    data["name"] = overrides.get("name") or fork_name(template, taken)
    try:
        spec = SessionSpec.model_validate(data, context={"path": deck.path})
    except ValidationError as error:
        problems = "; ".join(problem_lines(error.errors(), data, SessionSpec))
        raise SessionError(f"cannot fork {source.name!r}: {problems}") from None
    _check_fits(spec, deck, taken, "fork")
    return spec


def added_spec(table: Mapping[str, object], deck: DeckSpec, taken: Collection[str]) -> SessionSpec:
    """A session table given at run time (`swarmdeck add`), validated like one in the deck
    (relative paths resolve against the deck's directory); one session, never replicas."""
    if "replicas" in table:
        raise SessionError("cannot add: `replicas` is for deck files (add one session)")
    try:
        spec = SessionSpec.model_validate(dict(table), context={"path": deck.path})
    except ValidationError as error:
        problems = "; ".join(problem_lines(error.errors(), dict(table), SessionSpec))
        raise SessionError(f"cannot add a session: {problems}") from None
    _check_fits(spec, deck, taken, "add")
    return spec


def _check_fits(spec: SessionSpec, deck: DeckSpec, taken: Collection[str], verb: str) -> None:
    if spec.name in taken:
        raise SessionError(f"cannot {verb}: a session named {spec.name!r} exists")
    unknown = [d.name for d in spec.depends_on if d.name not in taken]
    if unknown:
        raise SessionError(f"cannot {verb}: unknown dependencies {', '.join(unknown)}")
    known = [host.name for host in deck.hosts]
    strange = [host for host in spec.hosts if host not in known]
    if strange:  # as the deck's own sessions are checked (engine/deck/checks.py)
        declared = ", ".join(known) or "none declared"
        raise SessionError(
            f"cannot {verb}: unknown host {strange[0]!r} (known: {declared}; "
            "a [[host]] table in the deck declares one)"
        )
    budget = deck.memory_budget
    if budget is not None and (spec.memory or 0) > budget:
        size, limit = format_size(spec.memory or 0), format_size(budget)
        raise SessionError(f"cannot {verb}: memory {size} exceeds memory_budget ({limit})")


def fork_name(template: str, taken: Collection[str]) -> str:
    """The name a fork gets unless it is given one: the first free `<template>-fork-<n>`
    (also what the room's fork dialog shows as the default)."""
    number = 1
    while f"{template}-fork-{number}" in taken:
        number += 1
    return f"{template}-fork-{number}"
