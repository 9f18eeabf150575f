"""Who is who on the bus: one secret token per session, made once per engine run, checked
against the kernel's word on who is connecting.

A connection proves its session with `hello` (name + token), so the engine, not the client,
says who sent a message. A token alone is not enough: every process of the user can read
another's environment (/proc/PID/environ), so the engine also asks `identify` which
sessions the connecting process (its SO_PEERCRED pid) belongs to, and refuses a claim to
any other. A process in no session (the operator's own tools, the engine's process) is
known by its token, as before.
"""

from __future__ import annotations

import os
import secrets
from hmac import compare_digest
from typing import TYPE_CHECKING

from engine.bus.bus_errors import AuthError

if TYPE_CHECKING:
    from collections.abc import Callable

    from engine.bus.router import Router


class Tokens:
    def __init__(self, router: Router) -> None:
        self._router = router
        self._tokens: dict[str, str] = {}
        self.identify: Callable[[int], frozenset[str]] | None = None
        """The sessions a pid belongs to (empty: none); set by the engine."""

    def token_for(self, session: str) -> str:
        """The secret a session presents in `hello`. The engine asks for every job it starts,
        so sessions made at run time (replicas, forks) join the bus too."""
        self._router.add_session(session)
        return self._tokens.setdefault(session, secrets.token_urlsafe(24))

    def authenticate(self, session: str, token: str, peer: tuple[int, int] | None = None) -> str:
        """`peer` is the connecting process's (pid, uid), when the socket tells."""
        expected = self._tokens.get(session, "")
        if not expected or not compare_digest(expected.encode(), token.encode()):
            raise AuthError(f"bad token for session {session!r}")
        if peer is not None:
            pid, uid = peer
            if uid != os.getuid():
                raise AuthError(f"process {pid} runs as uid {uid}, not the engine's user")
            owners = self.identify(pid) if self.identify is not None else frozenset()
            if owners and session not in owners:
                raise AuthError(
                    f"process {pid} belongs to session {', '.join(sorted(owners))}; "
                    f"it may not speak as {session!r}"
                )
        return session
