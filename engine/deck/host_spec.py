"""The deck's `[[host]]` tables: machines that sessions run on over SSH (docs/hosts.md).

A host is reached by one multiplexed SSH connection (engine/terminals/hosts.py); each
terminal on it is one channel of that connection, so `pool.size` must leave room within
sshd's `MaxSessions` (10 by default, `max_channels` here) for the short control channels
that signal a job's process group and measure the round trip.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from engine.deck.durations import Duration  # noqa: TC001 (pydantic needs it)

__all__ = ["HostPoolSpec", "HostSpec", "SshAddress", "parse_ssh_address", "warm_within_size"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ADDRESS = re.compile(
    r"(?:(?P<user>[A-Za-z0-9._][A-Za-z0-9._-]*)@)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
    r"(?::(?P<port>[0-9]{1,5}))?"
)
CONTROL_CHANNELS = 1
"""Channels kept free of terminals on each host: signals and the RTT probe use them."""


def warm_within_size(warm: int, info: ValidationInfo, size_name: str) -> int:
    """`warm` terminals never outnumber the pool's `size` (the deck's [pool] and a host's)."""
    size = info.data.get("size")
    if size is not None and warm > size:
        raise ValueError(f"must not exceed {size_name} ({size}), got {warm}")
    return warm


class SshAddress(BaseModel):
    """`user@host:port`, split (user None: the engine's user; port 22 by default)."""

    model_config = ConfigDict(frozen=True)

    user: str | None
    host: str
    port: int = 22

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        return f"{user}{self.host}:{self.port}"


def parse_ssh_address(value: str) -> SshAddress:
    """Split `[user@]host[:port]` (an IPv6 host in brackets); ValueError says what is wrong."""
    found = _ADDRESS.fullmatch(value.strip())
    if found is None:
        raise ValueError(f"expected an SSH address like 'user@host:22', got {value!r}")
    port = int(found["port"] or 22)
    if not 1 <= port <= 65535:
        raise ValueError(f"expected a port from 1 to 65535 in the SSH address, got {value!r}")
    return SshAddress(user=found["user"], host=found["host"].strip("[]"), port=port)


def _address(value: object) -> object:
    return parse_ssh_address(value) if isinstance(value, str) else value


def _host_name(value: object) -> object:
    if isinstance(value, str) and not _NAME.fullmatch(value):
        raise ValueError(
            "expected 1-64 letters, digits, '.', '_' or '-' starting with a letter or digit, "
            f"got {value!r}"
        )
    return value


class HostPoolSpec(BaseModel):
    """How many terminals may run on the host at once, and how many to keep warm."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    size: int = Field(default=8, ge=1, le=1000)
    warm: int = Field(default=2, ge=0)

    @field_validator("warm")
    @classmethod
    def _warm_fits(cls, warm: int, info: ValidationInfo) -> int:
        return warm_within_size(warm, info, "the host's pool.size")


class HostSpec(BaseModel):
    """One machine sessions may run on (`host = "NAME"` in a session)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: Annotated[str, BeforeValidator(_host_name)]
    ssh: Annotated[SshAddress, BeforeValidator(_address, json_schema_input_type=str)]
    """`user@host:port` (user: the engine's own; port: 22)."""
    identity: Path | None = None
    """The private key to log in with (None: the SSH agent and ~/.ssh's default keys)."""
    known_hosts: Path = Field(default="~/.ssh/known_hosts", validate_default=True)
    """The host's key must be listed here: an unknown key is refused, naming its fingerprint."""
    pool: HostPoolSpec = Field(default_factory=HostPoolSpec)
    max_channels: int = Field(default=10, ge=2, le=1000)
    """The host's sshd `MaxSessions`: channels open at once on its one connection."""
    connect_timeout: Duration = 10.0
    keepalive: Duration = 5.0
    """How often the connection's round trip is measured; a drop is noticed within ~3 of these."""

    @field_validator("identity", mode="before")
    @classmethod
    def _identity_exists(cls, value: object) -> object:
        """Checked at load time: a missing key would otherwise fail every session later."""
        if not isinstance(value, str):
            return value
        path = Path(value).expanduser()
        if not path.is_file():
            raise ValueError(f"expected an existing private key file ({path}), got {value!r}")
        return path

    @field_validator("known_hosts", mode="before")
    @classmethod
    def _expand(cls, value: object) -> object:
        return Path(value).expanduser() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _pool_fits_channels(self) -> HostSpec:
        room = self.max_channels - CONTROL_CHANNELS
        if self.pool.size > room:
            raise ValueError(
                f"pool.size ({self.pool.size}) must leave {CONTROL_CHANNELS} of max_channels "
                f"({self.max_channels}) free for control channels: at most {room}"
            )
        return self
