"""Who is who on the bus: one secret token per session, made once per engine run.

A connection proves its session with `hello` (name + token), so the engine, not the client,
says who sent a message: a session cannot send as another.
"""

from __future__ import annotations

import secrets
from hmac import compare_digest
from typing import TYPE_CHECKING

from engine.bus.errors import AuthError

if TYPE_CHECKING:
    from engine.bus.router import Router


class Tokens:
    def __init__(self, router: Router) -> None:
        self._router = router
        self._tokens: dict[str, str] = {}

    def token_for(self, session: str) -> str:
        """The secret a session presents in `hello`. The engine asks for every job it starts,
        so sessions made at run time (replicas, forks) join the bus too."""
        self._router.add_session(session)
        return self._tokens.setdefault(session, secrets.token_urlsafe(24))

    def authenticate(self, session: str, token: str) -> str:
        expected = self._tokens.get(session, "")
        if not expected or not compare_digest(expected.encode(), token.encode()):
            raise AuthError(f"bad token for session {session!r}")
        return session
