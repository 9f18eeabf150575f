"""A `swarmdeck serve --ssh` process with throwaway keys, and a real OpenSSH client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.remote_support import ROOT, short_dir
from tests.remote_support import SURVIVOR_DECK as DECK

if TYPE_CHECKING:
    from collections.abc import Iterator


@dataclass(frozen=True)
class SSHServed:
    socket: Path
    port: int
    keys: Path
    run_dir: Path
    process: subprocess.Popen[str]

    def ssh(self, key: str, *args: str) -> list[str]:
        """The ssh command line for one of the keys: operator, viewer, stranger."""
        options = ["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "BatchMode=yes",
                   "IdentitiesOnly=yes", "LogLevel=ERROR"]  # fmt: skip
        flags = [part for option in options for part in ("-o", option)]
        identity = str(self.keys / key)
        return ["ssh", "-F", "/dev/null", *flags, "-i", identity, "-p", str(self.port), *args]

    def audit(self) -> list[dict[str, Any]]:
        path = self.run_dir / "ssh-audit.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _keygen(directory: Path, name: str) -> str:
    path = directory / name
    command = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)]
    subprocess.run(command, check=True, capture_output=True)
    return path.with_suffix(".pub").read_text().strip()


@contextmanager
def ssh_served(tmp_path: Path, *options: str) -> Iterator[SSHServed]:
    """Serve the deck with SSH on a free loopback port; SIGTERM at the end."""
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    operator, viewer = _keygen(keys, "operator"), _keygen(keys, "viewer")
    _keygen(keys, "stranger")
    (keys / "authorized_keys").write_text(f'role="operator" {operator}\n{viewer}\n')
    (tmp_path / "svc.toml").write_text(DECK)
    with short_dir() as runtime:
        env = {**os.environ, "SWARMDECK_RUNTIME_DIR": str(runtime)}
        command = [sys.executable, "-m", "tui.cli", "serve", str(tmp_path / "svc.toml"),
                   "--run-dir", str(tmp_path / "run"), "--ssh", "127.0.0.1:0",
                   "--authorized-keys", str(keys / "authorized_keys"),
                   "--host-key", str(keys / "host_key"), *options]  # fmt: skip
        server = subprocess.Popen(command, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE)
        assert server.stdout is not None
        try:
            serving, listening = server.stdout.readline(), server.stdout.readline()
            assert "ssh on 127.0.0.1:" in listening, (serving, listening)
            socket = Path(serving.rsplit(" on ", 1)[1].strip())
            port = int(listening.split("127.0.0.1:", 1)[1].split()[0])
            yield SSHServed(socket, port, keys, tmp_path / "run", server)
        finally:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
            server.wait(30)
            server.stdout.close()
