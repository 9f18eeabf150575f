"""The engine's bus on a host: its socket forwarded over the host's kept connection.

A job on a host gets the same `SWARMDECK_BUS`, `SWARMDECK_SESSION` and `SWARMDECK_BUS_TOKEN`
as locally, but its `SWARMDECK_BUS` names a socket on the host: sshd listens there
(OpenSSH's streamlocal-forward, asking nothing of the host but its sshd) and carries every
connection back over the host's one connection to the engine's own bus socket. So every
rule of the bus (the token at `hello`, acks, redelivery, dead letters, TTL) holds as it
is, checked by the one broker. Since the engine's process makes the local connection, the
kernel's word on the peer (SO_PEERCRED) names the engine: a remote session is known by
its token (docs/security.md).

As each connection is made (or when the first job that needs it asks) the engine makes a
fresh directory `/tmp/swarmdeck-bus-NONCE` (0700; `mkdir` refuses one that exists), writes
the stdlib bus CLI and a `swarmdeck` script there (bus_shim.py), and asks sshd to listen on
`bus.sock` in it (sshd makes it 0600, by its default StreamLocalBindMask). On a reconnect
it does so again, removing the directory of the connection that dropped; on the engine's
end it removes the current one. An sshd that
refuses (`AllowStreamLocalForwarding no`, `DisableForwarding`, a `restrict` key) is
reported once per host (a warning, and `HostStatistics.bus_problem`); sessions there still
run, and `swarmdeck bus` in them fails saying why (`SWARMDECK_BUS_ERROR`).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shlex
from typing import TYPE_CHECKING

import anyio

from engine.errors import HostError, HostForwardError
from engine.terminals.hosts.bus_shim import install_command

if TYPE_CHECKING:
    from collections.abc import Mapping

    from engine.terminals.hosts.host_link import HostLink
    from engine.terminals.hosts.ssh_link import Forward, SshLink

log = logging.getLogger(__name__)

BUS = "SWARMDECK_BUS"
BUS_ERROR = "SWARMDECK_BUS_ERROR"  # why there is no bus on this host (the client says it)
ROOT = "/tmp"  # where each connection's directory is made on the host


class BusForward:
    """One host's forward of the engine's bus socket, renewed with each connection."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.local: str | None = None  # the engine's bus socket (HostLink.forward_bus, a job)
        self.problem: str | None = None  # why jobs on the host have no bus, if they have not
        self._on: SshLink | None = None  # the connection the current set-up was made on
        self._directory: str | None = None  # made on the host, not yet removed
        self._forward: Forward | None = None
        self._told = False
        self._lock = anyio.Lock()

    @property
    def socket(self) -> str | None:
        """The forwarded socket on the host, once set up on the current connection."""
        return f"{self._directory}/bus.sock" if self._forward is not None else None

    async def job_env(
        self, host: HostLink, env: Mapping[str, str]
    ) -> tuple[dict[str, str], str | None]:
        """`env` for a job on the host, and the directory to put first on its PATH (None:
        none). A job without the bus (no SWARMDECK_BUS) is left as it is."""
        local = env.get(BUS)
        if local is None:
            return dict(env), None
        self.local = local
        link = await host.link()
        await self._ensure(host, link)
        if self._directory is None:
            missing = f"{ROOT}/swarmdeck-bus-unavailable"
            return {**env, BUS: missing, BUS_ERROR: str(self.problem)}, None
        placed = {**env, BUS: f"{self._directory}/bus.sock"}
        if self.problem is not None:
            placed[BUS_ERROR] = self.problem
        return placed, f"{self._directory}/bin"

    async def renew(self, host: HostLink, link: SshLink) -> None:
        """On a new connection: the forward again at once (if a job already asked for it)."""
        if self.local is not None:
            with contextlib.suppress(HostError):  # the next job tries again, and says why
                await self._ensure(host, link)

    async def _ensure(self, host: HostLink, link: SshLink) -> None:
        async with self._lock:
            if self._on is link or self.local is None:
                return
            directory = f"{ROOT}/swarmdeck-bus-{secrets.token_hex(8)}"
            exited = await host.run(install_command(directory, self._directory))
            self._on, self._forward = link, None
            if exited.code != 0:
                self._directory = None
                how = f"exit {exited.code}" if exited.code is not None else "killed"
                self._fail(f"host {self.host!r}: could not make {directory} ({how})")
                return
            self._directory = directory
            try:
                self._forward = await link.forward_unix(f"{directory}/bus.sock", self.local)
            except HostForwardError as exc:
                why = str(exc.__cause__ or exc)  # asyncssh's words, without the host again
                self._fail(
                    f"host {self.host!r}: its sshd refused to forward the bus socket ({why}); "
                    "sessions there run without the bus (the host's sshd_config needs "
                    "AllowStreamLocalForwarding yes, and no DisableForwarding)"
                )
                return
            self.problem = None

    def _fail(self, problem: str) -> None:
        self.problem = problem
        if not self._told:  # once per host, not once per connection or job
            self._told = True
            log.warning("%s", problem)

    async def aclose(self, link: SshLink | None) -> None:
        """Stop the forward and remove the directory (if the host can still be reached);
        after a set-up under way, so that the directory it makes is not left behind."""
        with anyio.move_on_after(5):
            async with self._lock:
                await self._remove(link)

    async def _remove(self, link: SshLink | None) -> None:
        forward, directory = self._forward, self._directory
        self._forward = self._directory = self._on = None
        self.local = None  # nothing more is set up on this host
        if forward is not None:
            forward.close()
        if directory is not None and link is not None and not link.closed.is_set():
            with anyio.move_on_after(5), contextlib.suppress(HostError):
                await link.run(f"rm -rf {shlex.quote(directory)}")
