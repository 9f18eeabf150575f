"""What `serve --ssh` was told: where to listen, whom to let in, limits, the host key.

The host key is generated once (ed25519) and kept, so clients' known_hosts stay valid
across restarts: in the state directory, $XDG_STATE_HOME/swarmdeck/ (default
~/.local/state; not the runtime dir, which a reboot empties, nor the config dir, which is
for settings a person writes and may share). A key an older swarmdeck kept under
$XDG_CONFIG_HOME/swarmdeck/ is moved there once, so known_hosts stay valid.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import asyncssh

import engine
from engine import SwarmdeckError

LOOPBACK = "127.0.0.1"


class SSHConfigError(SwarmdeckError):
    """A `--ssh*` option or the host key file is unusable."""


@dataclass(frozen=True)
class SSHConfig:
    host: str
    port: int
    authorized_keys: Path
    host_key: Path
    max_clients: int = 16
    idle_timeout: float = 1800.0
    grace: float = 2.0
    """Seconds between SIGHUP and SIGKILL for a disconnected client's process."""


def parse_listen(text: str) -> tuple[str, int]:
    """`PORT`, `:PORT` or `HOST:PORT` (`[::1]:PORT`); no host means loopback only."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or LOOPBACK
    if not port.isdigit() or int(port) > 65535:
        raise SSHConfigError(f"--ssh {text!r}: expected HOST:PORT or PORT")
    return host, int(port)


def parse_duration(text: str) -> float:
    """`90`, `90s`, `30m`, `2h`: the deck's duration syntax (engine/deck/durations.py)."""
    try:
        return engine.parse_duration(text.strip())
    except ValueError as exc:
        raise SSHConfigError(f"{text!r}: {exc}") from None


KEY_NAME = "ssh_host_ed25519_key"


def default_host_key_path() -> Path:
    """The state directory's key, after moving one left in the config directory."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    path = Path(state) / "swarmdeck" / KEY_NAME
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    old = Path(config) / "swarmdeck" / KEY_NAME
    if not path.exists() and old.is_file():
        _move_key(old, path)
    return path


def _move_key(old: Path, new: Path) -> None:
    """Same key, new place, 0600 in a 0700 directory; never two different keys."""
    new.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.link(old, new)  # atomic; a concurrent serve's move simply finds it done
    except FileExistsError:
        return
    except OSError:  # another file system: copy, exclusively
        try:
            fd = os.open(new, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        with os.fdopen(fd, "wb") as file:
            file.write(old.read_bytes())
    os.chmod(new, 0o600)
    old.unlink(missing_ok=True)
    print(f"swarmdeck: moved the SSH host key from {old} to {new}", file=sys.stderr)


def load_or_create_host_key(path: Path) -> asyncssh.SSHKey:
    """Read the key, or create it (0600, in a 0700 directory) the first time."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = asyncssh.generate_private_key("ssh-ed25519", comment="swarmdeck host key")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another serve won the race: use its key
            return load_or_create_host_key(path)
        with os.fdopen(fd, "wb") as file:
            file.write(key.export_private_key())
        return key
    try:
        return asyncssh.read_private_key(path)
    except (OSError, asyncssh.KeyImportError) as exc:
        raise SSHConfigError(f"host key {path}: {exc}") from exc
