"""One secret per role, made at start, and the links that carry them.

A token is the whole credential of a browser link, so it is long (32 random bytes),
compared in constant time, and written only to the console and to a 0600 file in the
run directory (removed when serving stops: the tokens die with the server).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

TOKEN_BYTES = 32


class RoomTokens:
    def __init__(self, roles: tuple[str, ...]) -> None:
        self.by_role = {role: secrets.token_urlsafe(TOKEN_BYTES) for role in roles}

    def role_for(self, token: str | None) -> str | None:
        """The role whose token this is, or None; every role is compared, in constant time."""
        found = None
        given = (token or "").encode()
        for role, secret in self.by_role.items():
            if hmac.compare_digest(given, secret.encode()):
                found = role
        return found if token else None

    def links(self, base_url: str) -> dict[str, str]:
        return {role: f"{base_url}/?token={token}" for role, token in self.by_role.items()}


def write_links(path: Path, links: dict[str, str]) -> None:
    """Write the links readable by this user only, created 0600 before any byte is in it
    (a pre-existing file is replaced, never rewritten in place with its old mode)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):  # left by a crash of this same pid
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(links, file, indent=2)
        file.write("\n")
    os.replace(temporary, path)
