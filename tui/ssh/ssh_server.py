"""The asyncssh server behind `serve --ssh`: public-key auth, roles, limits, audit.

One `_Connection` per TCP connection decides who may in (keys reloaded from the
authorized_keys file at each login, so removing a line takes effect for the next login)
and refuses everything but a terminal session: no passwords or keyboard-interactive, no
port, agent or X11 forwarding, no SFTP/SCP. The role travels from the matched key line to
the child's argv and environment; nothing the client sends can change it.
"""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import asyncssh

from tui.audit import AuditLog
from tui.ssh.authorized_keys import (
    AuthorizedKey,
    AuthorizedKeysError,
    find_key,
    load_authorized_keys,
)
from tui.ssh.limits import SESSIONS_PER_CONNECTION
from tui.ssh.session import Launch, TerminalSession
from tui.ssh.ssh_config import load_or_create_host_key

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from tui.ssh.child import ChildTerminal
    from tui.ssh.ssh_config import SSHConfig

LOGIN_TIMEOUT = 30.0
KEEPALIVE = 60.0
PENDING_LOGINS = 32  # connections still logging in, at most (sshd's MaxStartups, in spirit)


class SSHService:
    """Shared by every connection: configuration, audit log, who is connected now."""

    def __init__(self, config: SSHConfig, socket: Path, run_dir: Path) -> None:
        self.config, self.socket = config, socket
        self.audit = AuditLog(run_dir)
        self.keys = load_authorized_keys(config.authorized_keys)  # fail at start, not later
        self.connections: set[_Connection] = set()
        self.children: set[ChildTerminal] = set()

    @property
    def logged_in(self) -> int:
        return sum(1 for connection in self.connections if connection.logged_in)

    async def close(self) -> None:
        """Disconnect everyone, hang up every child and wait (bounded) for them to go."""
        for connection in list(self.connections):
            connection.close()
        children = list(self.children)
        for child in children:
            child.hang_up(self.config.grace)
        waits = [child.exited.wait() for child in children]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*waits), self.config.grace + 5)


class _Connection(asyncssh.SSHServer):
    def __init__(self, service: SSHService) -> None:
        self._service = service
        self._conn: asyncssh.SSHServerConnection | None = None
        self._peer = "?"
        self._key: AuthorizedKey | None = None
        self.logged_in = False
        self.sessions = 0

    def _record(self, event: str, **fields: object) -> None:
        key, who = self._key, {}
        if key is not None:
            who = {"fingerprint": key.fingerprint, "comment": key.comment, "role": key.role}
        self._service.audit.record(event, self._peer, **who, **fields)

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        host, port = (conn.get_extra_info("peername") or ("?", 0))[:2]
        self._peer = f"{host}:{port}"
        service = self._service
        pending = len(service.connections) - service.logged_in
        if pending >= PENDING_LOGINS:  # a flood of idle connections must not lock users out
            self._record("refused", reason=f"too many connections logging in ({pending})")
            conn.close()
            return
        service.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._service.connections.discard(self)
        if self._key is not None:
            self._record("disconnect", reason=str(exc) if exc else "closed")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    # -- who may come in ------------------------------------------------------------------
    def begin_auth(self, username: str) -> bool:
        service = self._service
        self._check_room()
        try:
            service.keys = load_authorized_keys(service.config.authorized_keys)
        except AuthorizedKeysError as exc:  # keep the last good list; say why in the log
            self._record("refused", reason=f"authorized_keys unreadable, using last good: {exc}")
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        found = find_key(self._service.keys, key)
        if found is None:
            fingerprint = key.get_fingerprint()
            self._record("refused", reason="unknown key", fingerprint=fingerprint)
            return False
        self._key = found
        return True

    def auth_completed(self) -> None:
        self._check_room()  # checked again: others may have logged in meanwhile
        self.logged_in = True
        self._record("connect")

    def _check_room(self) -> None:
        """Only logged-in clients count towards max_clients, so connections that never
        log in (scanners, a stuck client) cannot keep a user out."""
        limit = self._service.config.max_clients
        if self._service.logged_in >= limit:
            self._record("refused", reason=f"too many clients (limit {limit})")
            raise asyncssh.DisconnectError(
                asyncssh.DISC_TOO_MANY_CONNECTIONS, f"swarmdeck: too many clients ({limit})"
            )

    # -- what they may do -----------------------------------------------------------------
    def session_requested(self) -> TerminalSession | bool:
        """One session (so one room) per connection: each is counted in max_clients
        through its connection, and a second one would be a room nobody counted."""
        assert self._key is not None
        if self.sessions >= SESSIONS_PER_CONNECTION:
            limit = SESSIONS_PER_CONNECTION
            self._record("refused", reason=f"another session on one connection (limit {limit})")
            return False
        self.sessions += 1
        config = self._service.config
        launch = Launch(
            str(self._service.socket), self._key.role, config.grace, config.idle_timeout,
            self._record, self._service.children, self._session_ended,
        )  # fmt: skip
        return TerminalSession(launch)

    def _session_ended(self) -> None:
        self.sessions -= 1

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str,
                             orig_port: int) -> bool:  # fmt: skip
        self._record("refused", reason=f"port forwarding to {dest_host}:{dest_port}")
        return False

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        self._record("refused", reason=f"remote forwarding from {listen_host}:{listen_port}")
        return False

    def unix_connection_requested(self, dest_path: str) -> bool:
        self._record("refused", reason=f"unix socket forwarding to {dest_path}")
        return False

    def unix_server_requested(self, listen_path: str) -> bool:
        self._record("refused", reason=f"unix socket forwarding from {listen_path}")
        return False


@asynccontextmanager
async def open_ssh_server(
    config: SSHConfig, socket: Path, run_dir: Path
) -> AsyncIterator[tuple[SSHService, int]]:
    """Listen for the block; yields the service and the bound port (config.port may be 0).
    On exit every client is disconnected and every child hung up; the engine is untouched."""
    service = SSHService(config, socket, run_dir)
    host_key = load_or_create_host_key(config.host_key)
    acceptor = await asyncssh.create_server(
        lambda: _Connection(service), config.host, config.port,
        server_host_keys=[host_key], agent_forwarding=False, x11_forwarding=False,
        allow_scp=False, sftp_factory=None, encoding=None, login_timeout=LOGIN_TIMEOUT,
        keepalive_interval=KEEPALIVE, keepalive_count_max=3,
    )  # fmt: skip
    port = acceptor.get_port()
    where = f"{config.host}:{port}"
    service.audit.record("listening", where, host_key=host_key.get_fingerprint())
    try:
        yield service, port
    finally:
        acceptor.close()
        await acceptor.wait_closed()
        await service.close()
        service.audit.record("stopped", where)
