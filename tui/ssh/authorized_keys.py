"""authorized_keys for `swarmdeck serve --ssh`: public keys, each with a role.

The OpenSSH line format, with one option of our own: `role="operator"` or `role="viewer"`
(default viewer, so a key added without thought can only watch). Any other option is
refused rather than ignored: a line copied from sshd with `command=` or `from=` would
otherwise look restricted while granting everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncssh

from engine import SwarmdeckError
from engine.remote import ROLES

if TYPE_CHECKING:
    from pathlib import Path

_KEY_TYPE_PREFIXES = ("ssh-", "ecdsa-", "sk-")


class AuthorizedKeysError(SwarmdeckError):
    """The authorized_keys file cannot be read or has a line we will not guess about."""


@dataclass(frozen=True)
class AuthorizedKey:
    """One accepted public key and what its holder may do."""

    key: asyncssh.SSHKey
    role: str
    comment: str

    @property
    def fingerprint(self) -> str:
        return self.key.get_fingerprint()


def load_authorized_keys(path: Path) -> list[AuthorizedKey]:
    """Every key in `path`; blank lines and `#` comments are skipped, anything odd raises."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise AuthorizedKeysError(f"{path}: {exc.strerror}") from exc
    keys = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            try:
                keys.append(parse_line(line))
            except AuthorizedKeysError as exc:
                raise AuthorizedKeysError(f"{path}:{number}: {exc}") from None
    return keys


def find_key(keys: list[AuthorizedKey], offered: asyncssh.SSHKey) -> AuthorizedKey | None:
    """The first line naming `offered` wins, as in sshd."""
    return next((k for k in keys if k.key.public_data == offered.public_data), None)


def parse_line(line: str) -> AuthorizedKey:
    options: dict[str, str] = {}
    if not line.startswith(_KEY_TYPE_PREFIXES):
        head, line = _split_options(line)
        options = _parse_options(head)
    fields = line.split(None, 2)
    if len(fields) < 2:
        raise AuthorizedKeysError('expected: [role="..."] KEYTYPE BASE64 [COMMENT]')
    try:
        key = asyncssh.import_public_key(f"{fields[0]} {fields[1]}")
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise AuthorizedKeysError(f"not a public key: {exc}") from None
    role = options.get("role", "viewer")
    if role not in ROLES:
        raise AuthorizedKeysError(f'role must be "operator" or "viewer", not {role!r}')
    return AuthorizedKey(key, role, fields[2].strip() if len(fields) > 2 else "")


def _split_options(line: str) -> tuple[str, str]:
    """Options end at the first blank outside double quotes."""
    quoted = False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char in " \t" and not quoted:
            return line[:index], line[index:].strip()
    raise AuthorizedKeysError("options but no key")


def _parse_options(head: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for item in _split_commas(head):
        name, equals, value = item.partition("=")
        if name != "role":
            raise AuthorizedKeysError(
                f"unknown option {name!r}: swarmdeck understands only "
                'role="operator" or role="viewer"'
            )
        if not equals or len(value) < 2 or value[0] != '"' or value[-1] != '"':
            raise AuthorizedKeysError(f'option {item!r}: write role="operator" or "viewer"')
        options[name] = value[1:-1]
    return options


def _split_commas(head: str) -> list[str]:
    items, start, quoted = [], 0, False
    for index, char in enumerate(head):
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append(head[start:index])
            start = index + 1
    items.append(head[start:])
    return items
