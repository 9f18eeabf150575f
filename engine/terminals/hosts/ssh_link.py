"""The engine's only importer of asyncssh: one SSH connection to a host, typed.

What the rest of engine/terminals/hosts/ needs from SSH is small: connect with the deck's
identity and known_hosts (an unknown host key refused, naming the host and the key's
fingerprint), open a `pty-req` channel running one command whose bytes go to a callback,
run a short command for its exit status (signals, the round-trip probe), and learn when
the connection ends. asyncssh's callback classes stay in here.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import asyncssh

from engine.errors import HostForwardError, HostKeyError, HostUnreachableError

if TYPE_CHECKING:
    from collections.abc import Callable

    from engine.deck.host_spec import HostSpec

__all__ = ["Forward", "PtyChannel", "SshLink", "UnixStream", "open_ssh_link"]

_REFUSED = (asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, asyncssh.OPEN_CONNECT_FAILED)


class _KeyWitness(asyncssh.SSHClient):
    """Called by asyncssh only for a host key known_hosts does not list: refuse it, and
    keep its fingerprint for the error."""

    def __init__(self) -> None:
        self.refused: str | None = None

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.refused = f"{key.get_algorithm()} {key.get_fingerprint('sha256')}"
        return False


async def open_ssh_link(spec: HostSpec) -> SshLink:
    """Connect to `spec`'s host; HostKeyError or HostUnreachableError say why not."""
    witness = _KeyWitness()
    known = spec.known_hosts
    trusted: str | tuple[list[object], list[object], list[object]]
    trusted = str(known) if known.is_file() else ([], [], [])  # none listed: all unknown
    address = spec.ssh
    try:
        conn = await asyncssh.connect(
            address.host,
            address.port,
            username=address.user or (),
            client_keys=[str(spec.identity)] if spec.identity is not None else (),
            known_hosts=trusted,
            client_factory=lambda: witness,
            connect_timeout=spec.connect_timeout,
            keepalive_interval=spec.keepalive,
            keepalive_count_max=3,
            agent_path=None if spec.identity is not None else (),
            config=[],
        )
    except (OSError, asyncssh.Error, TimeoutError) as exc:
        if witness.refused is not None:
            raise HostKeyError(
                f"host {spec.name!r} ({address}): its host key {witness.refused} is not in "
                f"{known}; check it, then add it (ssh-keyscan -p {address.port} "
                f"{address.host} >> {known})"
            ) from None
        raise HostUnreachableError(f"host {spec.name!r} ({address}): {_why(exc)}") from exc
    return SshLink(spec.name, conn)


def _why(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.strip()


@dataclass(frozen=True)
class Exited:
    """How a remote command ended: an exit code, or the signal that killed it."""

    code: int | None
    signal: int | None


class _PtySession(asyncssh.SSHClientSession[bytes]):
    """Hands each chunk to `on_data`; `on_close` once the channel has ended (with the
    connection's error if it dropped)."""

    def __init__(
        self, on_data: Callable[[bytes], None], on_close: Callable[[Exception | None], None]
    ) -> None:
        self._on_data, self._on_close = on_data, on_close

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self._on_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_close(exc)


class PtyChannel:
    """One `pty-req` channel running one command on the host."""

    def __init__(self, chan: asyncssh.SSHClientChannel[bytes]) -> None:
        self._chan = chan

    def write(self, data: bytes) -> None:
        self._chan.write(data)

    def write_buffered(self) -> int:
        return self._chan.get_write_buffer_size()

    def pause_reading(self) -> None:
        """Stop delivering data (asyncssh then holds the SSH window: the sender waits)."""
        self._chan.pause_reading()

    def resume_reading(self) -> None:
        self._chan.resume_reading()

    def resize(self, cols: int, rows: int) -> None:
        self._chan.change_terminal_size(cols, rows)

    def exited(self) -> Exited | None:
        """The command's end as sshd reported it (None: not reported, e.g. the link dropped)."""
        found = self._chan.get_exit_signal()
        if found is not None:
            name = found[0]
            number = signal.Signals.__members__.get(f"SIG{name}")
            return Exited(None, int(number) if number is not None else None)
        code = self._chan.get_exit_status()
        return Exited(code, None) if code is not None and code >= 0 else None

    def close(self) -> None:
        self._chan.close()

    async def wait_closed(self) -> None:
        await self._chan.wait_closed()


class UnixStream:
    """Bytes to and from a Unix socket on the host, over one channel (a launcher's
    `ControlStream`, engine/terminals/channel.py)."""

    def __init__(
        self, reader: asyncssh.SSHReader[bytes], writer: asyncssh.SSHWriter[bytes]
    ) -> None:
        self._reader, self._writer = reader, writer

    def send(self, data: bytes) -> None:
        if self._writer.is_closing():
            raise OSError("the stream to the host is closed")
        self._writer.write(data)

    async def receive(self) -> bytes:
        """What has come (b"" at the end)."""
        try:
            return await self._reader.read(65536)
        except asyncssh.Error as exc:
            raise OSError(str(exc)) from exc

    def close(self) -> None:
        self._writer.close()


class Forward:
    """A Unix socket sshd listens on at the host, each connection to it carried here."""

    def __init__(self, listener: asyncssh.SSHListener) -> None:
        self._listener = listener

    def close(self) -> None:
        """Ask sshd to stop listening (the socket file stays: the caller removes it)."""
        self._listener.close()


class SshLink:
    """An open connection to one host: channels on it, short commands, its end."""

    def __init__(self, host: str, conn: asyncssh.SSHClientConnection) -> None:
        self.host = host
        self._conn = conn
        self.closed = anyio.Event()
        self.error: str | None = None

    async def watch(self) -> None:
        """Return once the connection has ended (for any reason); remember why."""
        try:
            await self._conn.wait_closed()
        finally:
            self.closed.set()

    def lose(self, why: str) -> None:
        self.error = self.error or why

    async def open_pty(
        self,
        command: str,
        cols: int,
        rows: int,
        term: str,
        on_data: Callable[[bytes], None],
        on_close: Callable[[Exception | None], None],
    ) -> PtyChannel:
        """A `pty-req` channel (`cols` x `rows`, $TERM `term`) running `command`."""
        try:
            chan, _ = await self._conn.create_session(
                lambda: _PtySession(on_data, on_close),
                command,
                term_type=term,
                term_size=(cols, rows),
                encoding=None,
            )
        except (OSError, asyncssh.Error) as exc:
            raise HostUnreachableError(f"host {self.host!r}: no channel: {_why(exc)}") from exc
        return PtyChannel(chan)

    async def open_unix(self, path: str) -> UnixStream:
        """A stream to a Unix socket on the host (OpenSSH's direct-streamlocal);
        HostForwardError if sshd refuses it (AllowStreamLocalForwarding no)."""
        try:
            reader, writer = await self._conn.open_unix_connection(path)
        except asyncssh.ChannelOpenError as exc:
            # OpenSSH refuses one (AllowStreamLocalForwarding no, DisableForwarding) with
            # "open failed", as it answers for a socket that is not there: the caller only
            # opens a socket the host said listens.
            if exc.code not in _REFUSED:
                raise HostUnreachableError(f"host {self.host!r}: {path}: {_why(exc)}") from exc
            raise HostForwardError(f"host {self.host!r}: {path}: {_why(exc)}") from exc
        except (OSError, asyncssh.Error) as exc:
            raise HostUnreachableError(f"host {self.host!r}: {path}: {_why(exc)}") from exc
        return UnixStream(reader, writer)

    async def forward_unix(self, remote: str, local: str) -> Forward:
        """Connections to `remote`, a socket sshd makes on the host, reach `local` here
        (OpenSSH's streamlocal-forward); HostForwardError if sshd refuses it."""
        try:
            listener = await self._conn.forward_remote_path(remote, local)
        except asyncssh.ChannelListenError as exc:
            raise HostForwardError(f"host {self.host!r}: {_why(exc)}") from exc
        except (OSError, asyncssh.Error) as exc:
            raise HostUnreachableError(f"host {self.host!r}: {_why(exc)}") from exc
        return Forward(listener)

    async def run(self, command: str) -> Exited:
        """Run a short command (no pty) and return how it ended."""
        try:
            done = await self._conn.run(command, stdin=asyncssh.DEVNULL, check=False)
        except (OSError, asyncssh.Error) as exc:
            raise HostUnreachableError(f"host {self.host!r}: {_why(exc)}") from exc
        if done.exit_signal is not None:
            number = signal.Signals.__members__.get(f"SIG{done.exit_signal[0]}")
            return Exited(None, int(number) if number is not None else None)
        return Exited(done.exit_status, None)

    async def aclose(self) -> None:
        self._conn.close()
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            await self._conn.wait_closed()
