"""A real OpenSSH server on loopback, as the current user, with throwaway keys.

Sessions on a host (docs/hosts.md) are tested against this, not against a stand-in: the
`sshd` fixture starts `/usr/sbin/sshd -D -e -f <generated config>` on a free port, with a
generated host key and client key, and kills it (and every connection it forked) at the
end. Outside CI a machine without openssh-server skips these tests, saying why; in CI
(`scripts/check` installs it) a missing sshd is a failure.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

SSHD = Path("/usr/sbin/sshd")
START_DEADLINE = 30.0  # s: a loaded machine is slow to start sshd; we wait on the port


@dataclass(frozen=True)
class Sshd:
    """One running sshd: where it listens and the files a client needs."""

    port: int
    user: str
    identity: Path  # the client's private key (authorised)
    known_hosts: Path  # a known_hosts file naming this server's host key
    host_key_pub: str
    process: subprocess.Popen[bytes]
    directory: Path

    @property
    def address(self) -> str:
        return f"{self.user}@127.0.0.1:{self.port}"

    def host_key_fingerprint(self) -> str:
        """SHA256:... as ssh-keygen -l (and asyncssh) print it."""
        command = ["ssh-keygen", "-l", "-f", str(self.directory / "host_key.pub")]
        return subprocess.run(command, check=True, capture_output=True, text=True).stdout.split()[1]

    def connection_pids(self) -> list[int]:
        """The per-connection sshd processes (children of the listener)."""
        return [pid for pid, ppid in _parents() if ppid == self.process.pid]

    def drop_connections(self) -> int:
        """SIGKILL every connection's sshd processes (the listener stays): the host's
        network drops, and sshd's PTYs close under the jobs as they would."""
        pids = _sshd_descendants(self.process.pid)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)

    def freeze_connections(self) -> int:
        """SIGSTOP every connection's sshd: a host that stops answering without closing
        anything (a network black hole); `stop` kills them at the end."""
        pids = _sshd_descendants(self.process.pid)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        return len(pids)

    def stop(self) -> None:
        """Kill the listener and every connection it forked; reap the listener."""
        self.drop_connections()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


def _sshd_descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, ppid in _parents():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        with contextlib.suppress(OSError), open(f"/proc/{pid}/comm") as f:
            if f.read().strip() == "sshd":
                found.append(pid)
    return found


def _parents() -> list[tuple[int, int]]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        found.append((int(entry), int(fields[1])))
    return found


def keygen(path: Path, comment: str) -> str:
    """An ed25519 key pair at `path` (and `path`.pub); returns the public line."""
    command = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)]
    subprocess.run(command, check=True, capture_output=True)
    return path.with_name(path.name + ".pub").read_text().strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _config(directory: Path, port: int, host_key: Path, options: Sequence[str] = ()) -> str:
    # sshd keeps the first value it reads of a keyword: `options` come first, so that they
    # override the defaults below (MaxSessions for a bench, say).
    return "\n".join(
        [
            *options,
            f"Port {port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {host_key}",
            f"PidFile {directory / 'sshd.pid'}",
            f"AuthorizedKeysFile {directory / 'authorized_keys'}",
            "StrictModes no",
            "UsePAM no",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "PermitRootLogin prohibit-password",
            "PermitUserEnvironment no",
            "MaxSessions 10",
            "LogLevel ERROR",
            "",
        ]
    )


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with {process.returncode}: {log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"sshd not listening on {port} within {START_DEADLINE}s")


@contextlib.contextmanager
def running_sshd(directory: Path, options: Sequence[str] = ()) -> Iterator[Sshd]:
    """Start sshd with keys and config made in `directory` (`options`: more sshd_config
    lines, e.g. "AllowStreamLocalForwarding no"); stop it at the end."""
    directory.mkdir(mode=0o700, exist_ok=True)
    if os.geteuid() == 0:  # root's sshd wants its privilege separation directory (what
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # the service would make)
    host_pub = keygen(directory / "host_key", "host")
    client_pub = keygen(directory / "client_key", "client")
    (directory / "authorized_keys").write_text(client_pub + "\n")
    port = _free_port()
    known = directory / "known_hosts"
    key_type, key_data = host_pub.split()[:2]
    known.write_text(f"[127.0.0.1]:{port} {key_type} {key_data}\n")
    config = directory / "sshd_config"
    config.write_text(_config(directory, port, directory / "host_key", options))
    with (directory / "sshd.log").open("wb") as log:  # the child keeps its own copy
        process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL, stderr=log
        )
    server = Sshd(port, getpass.getuser(), directory / "client_key", known, host_pub,
                  process, directory)  # fmt: skip
    forwards = _forwards()
    try:
        _wait_listening(port, process, directory / "sshd.log")
        yield server
    finally:
        server.stop()
        _remove_dead_forwards(_forwards() - forwards)


def _forwards() -> set[Path]:
    return set(Path("/tmp").glob("swarmdeck-bus-*"))


def _remove_dead_forwards(made: set[Path]) -> None:
    """The bus forwards made on this (loopback) host that nothing answers on any more: a
    test that drops or stops the host leaves them, as a real host would keep them (the
    engine could not reach it to remove them: docs/hosts.md)."""
    for directory in made:
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(str(directory / "bus.sock"))
            except (ConnectionRefusedError, FileNotFoundError):
                shutil.rmtree(directory, ignore_errors=True)
            except OSError:
                pass


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    """A real sshd on loopback for this test (skipped outside CI without openssh-server)."""
    if not SSHD.exists():
        if os.environ.get("CI"):
            pytest.fail("openssh-server is not installed (scripts/check installs it)")
        pytest.skip("openssh-server is not installed: /usr/sbin/sshd is missing")
    with running_sshd(tmp_path / "sshd") as server:
        yield server
