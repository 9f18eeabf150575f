"""Which session a process belongs to, from the kernel's word, not the process's.

The bus asks this about the peer of every `hello` (SO_PEERCRED gives its pid), so a process
cannot speak as another session by presenting that session's token, which any process of
the same user can read from /proc/PID/environ. A process belongs to a session when it, or
an ancestor, is in the process group of the session's running job (its pid) or in the
session id of the job's terminal (a pooled terminal's launcher is a subreaper: what a job
leaves behind is re-parented into that session id).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from engine.terminals import procs

if TYPE_CHECKING:
    from collections.abc import Mapping

    from engine.sessions.session import Session


def owners(sessions: Mapping[str, Session], pid: int) -> frozenset[str]:
    """The sessions `pid` may speak as; empty when it is in none (the operator's own
    processes, or the engine itself)."""
    groups: dict[int, str] = {}
    sids: dict[int, set[str]] = {}
    for name, session in sessions.items():
        term = session.terminal
        if session.pid is None or term is None or term.kind == "remote":
            continue  # a remote pid names a process on another machine
        groups[session.pid] = name
        sid = term.process_session()
        if sid is not None:
            sids.setdefault(sid, set()).add(name)
    if not groups:
        return frozenset()
    for stat in procs.lineage(pid, stop=os.getpid()):
        if stat.pgrp in groups:
            return frozenset({groups[stat.pgrp]})
        if stat.session in sids:
            return frozenset(sids[stat.session])
    return frozenset()
