"""Where served engines live: one private runtime directory per user, holding each
engine's control socket and a small registry file (`swarmdeck ls` reads them).

The root is $SWARMDECK_RUNTIME_DIR, else $XDG_RUNTIME_DIR/swarmdeck, else
/tmp/swarmdeck-<uid>; always mode 0700. A registry entry whose process is gone is stale
and removed when listed, with its socket; so is a socket nobody listens on any more (an
engine killed with -9 leaves both behind).

Under /tmp anyone may create the directory first, and whoever owns it can plant sockets
that `ls`/`attach` would trust (a victim's typed password would reach the squatter's
engine). So, as tmux does, the root must be a real directory (not a symlink) owned by
this user with no access for group or others; anything else is refused, never "fixed".
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import socket
import stat
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from engine.errors import SwarmdeckError

if TYPE_CHECKING:
    from engine.engine import Engine

REGISTRY_EVERY = 1.0


def runtime_root() -> Path:
    configured = os.environ.get("SWARMDECK_RUNTIME_DIR")
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if configured:
        root = Path(configured)
    elif xdg:
        root = Path(xdg) / "swarmdeck"
    else:
        root = Path(f"/tmp/swarmdeck-{os.getuid()}")
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    check_private(root)
    return root


class UnsafeRuntimeDirError(SwarmdeckError):
    """The runtime directory could be someone else's: refuse to use it."""


def check_private(root: Path) -> None:
    """Refuse a root that is a symlink, not ours, or reachable by group or others."""
    info = os.lstat(root)
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeRuntimeDirError(f"{root} is not a directory (a symlink?): refusing it")
    if info.st_uid != os.getuid():
        raise UnsafeRuntimeDirError(
            f"{root} is owned by uid {info.st_uid}, not by you (uid {os.getuid()}): "
            "someone may be impersonating your engines; remove it or set SWARMDECK_RUNTIME_DIR"
        )
    if info.st_mode & 0o077:
        raise UnsafeRuntimeDirError(
            f"{root} has mode {stat.S_IMODE(info.st_mode):o}; it must be 700 "
            f"(chmod 700 {root} if you made it)"
        )


def control_socket_path(run_dir: Path) -> Path:
    """`ROOT/<run id>-<hash of the absolute run dir>.sock`, so run directories sharing a
    last component (/a/run, /b/run) never share a socket; only the hash when the name
    would be too long for AF_UNIX."""
    digest = hashlib.sha256(os.fsencode(run_dir.absolute())).hexdigest()
    path = runtime_root() / f"{run_dir.name}-{digest[:8]}.sock"
    if len(os.fsencode(path)) < 100:
        return path
    return runtime_root() / f"{digest[:16]}.sock"


@dataclass(frozen=True)
class Registration:
    """What `swarmdeck ls` shows about one served engine."""

    run_id: str
    deck: str
    run_dir: str
    socket: str
    pid: int
    started_at: float
    sessions: int = 0
    live: int = 0
    deck_path: str = ""
    """The deck file served, so `swarmdeck run FILE` finds an engine already running it."""
    finished: bool = False
    """The run is over (every session final): `swarmdeck run FILE` starts a new one."""

    @property
    def path(self) -> Path:
        """Named after the socket, which is unique per run directory (not the run id)."""
        return runtime_root() / f"{Path(self.socket).stem}.json"


def register(entry: Registration) -> None:
    """Write (or refresh) the entry atomically."""
    temporary = entry.path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(entry)) + "\n")
    temporary.replace(entry.path)


async def keep_registered(engine: Engine, entry: Registration) -> None:
    """Refresh `entry` with the engine's session counts every REGISTRY_EVERY seconds."""
    while True:
        live, finished = len(engine.live_sessions()), engine.run_over
        register(
            dataclasses.replace(entry, sessions=len(engine.sessions), live=live, finished=finished)
        )
        await anyio.sleep(REGISTRY_EVERY)


def unregister(entry: Registration) -> None:
    with contextlib.suppress(FileNotFoundError):
        entry.path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prune() -> None:
    """Remove what killed engines left in the runtime directory (entries, sockets)."""
    registrations()


def registrations() -> list[Registration]:
    """Every running engine, oldest first; stale entries and sockets are pruned on the way."""
    root = runtime_root()
    found = []
    for path in sorted(root.glob("*.json")):
        try:
            entry = Registration(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        if _alive(entry.pid) and Path(entry.socket).exists():
            found.append(entry)
        else:
            path.unlink(missing_ok=True)
            if not _alive(entry.pid) and Path(entry.socket).parent == root:
                Path(entry.socket).unlink(missing_ok=True)
    live = {Path(e.socket).name for e in found}
    for sock in root.glob("*.sock"):
        if sock.name not in live and _abandoned(sock):
            sock.unlink(missing_ok=True)
    return sorted(found, key=lambda e: e.started_at)


STALE_AFTER = 30.0  # s: a socket younger than this may be one an engine is just setting up


def _abandoned(sock: Path) -> bool:
    """Nobody accepts on `sock`: its engine is gone (a live one, even busy, queues us). A
    socket made in the last STALE_AFTER seconds is never taken: between its bind and its
    listen (and its registration) an engine that is starting would lose it."""
    try:
        if time.time() - sock.lstat().st_mtime < STALE_AFTER:
            return False
    except OSError:
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.setblocking(False)
        try:
            probe.connect(os.fspath(sock))
        except ConnectionRefusedError:
            return True
        except OSError:  # EAGAIN: a full backlog is a live server; anything else: leave it
            return False
    return False


def serving(*, run_dir: Path | None = None, deck_path: Path | None = None) -> list[Registration]:
    """The running engines of one run directory, or else of one deck file."""
    if run_dir is not None:
        return [e for e in registrations() if Path(e.run_dir) == run_dir.absolute()]
    wanted = str(deck_path.absolute()) if deck_path is not None else None
    return [e for e in registrations() if e.deck_path == wanted]


def find_engine(ref: str | None) -> Registration:
    """By run id, deck name, socket path or run directory; None means the only one."""
    entries = registrations()
    if ref is None:
        chosen = entries
    else:
        keys = ("run_id", "deck", "socket", "run_dir")
        chosen = [e for e in entries if ref in {getattr(e, k) for k in keys}]
        chosen = chosen or serving(run_dir=Path(ref))
    if len(chosen) == 1:
        return chosen[0]
    names = ", ".join(e.run_id for e in chosen or entries) or "none running"
    problem = "matches several engines" if chosen else "matches no running engine"
    raise SwarmdeckError(f"{ref or 'no RUN given'}: {problem} ({names})")
