"""The deck's `[[host]]` tables: machines that sessions run on over SSH (docs/hosts.md).

A host is reached by one multiplexed SSH connection (engine/terminals/hosts/); a warm
terminal on it holds two channels of that connection (its PTY and its launcher's control
stream), so `2 x pool.size + 1` must fit in sshd's `MaxSessions` (10 by default,
`max_channels` here): one channel stays for the short commands that signal a job's
process group and measure the round trip.
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
CHANNELS_PER_TERMINAL = 2
"""A warm terminal holds its PTY channel and its launcher's control stream."""


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

    size: int = Field(default=4, ge=1, le=1000)
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
    max_channels: int = Field(default=10, ge=3, le=1000)
    """The host's sshd `MaxSessions`: channels open at once on its one connection (each
    terminal takes 2: its PTY and its launcher's control stream; 1 stays for control)."""
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
        size, most = self.pool.size, self.max_channels
        needed = CHANNELS_PER_TERMINAL * size + CONTROL_CHANNELS
        if needed > most:
            fits = (most - CONTROL_CHANNELS) // CHANNELS_PER_TERMINAL
            raise ValueError(
                f"pool.size ({size}) needs {CHANNELS_PER_TERMINAL} x {size} + "
                f"{CONTROL_CHANNELS} = {needed} channels (a PTY and a control stream per "
                f"terminal, {CONTROL_CHANNELS} for signals and probes), more than "
                f"max_channels ({most}): make pool.size at most {fits} or max_channels at "
                f"least {needed} (and the host's sshd MaxSessions with it)"
            )
        return self
