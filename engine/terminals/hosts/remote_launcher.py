"""The launcher (engine/terminals/launcher.py) started on a host, unchanged: the session
leader of a warm remote terminal (remote_pooled.py, docs/hosts.md).

The launcher reads its requests on an inherited socket. On a host there is nothing to
inherit, so a short bootstrap, run by `python3 -I -S -c` as the PTY's session leader,
listens on a fresh 0600 Unix socket, says so on the PTY (a line with a nonce), accepts one
connection (the engine's, over the SSH connection: OpenSSH's direct-streamlocal), removes
the socket file and runs the launcher's own source with that connection as its channel.
The source travels in the command line (~17 KB, far below the kernel's argument limit),
so nothing is installed on the host.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from engine.terminals.launched import init_script

__all__ = ["launcher_command", "ready_line"]

_SOURCE = Path(__file__).resolve().parent.parent / "launcher.py"


def ready_line(nonce: str) -> bytes:
    """What the bootstrap prints on the PTY once its socket listens."""
    return f"swarmdeck-launcher {nonce}".encode()


def launcher_command(nonce: str, marker: bytes, init: str = "") -> tuple[str, str]:
    """(the command for a pty channel, the Unix socket path to connect to on the host);
    `marker` ends each job's output, as on a local pooled terminal. The host's `sh` runs
    the pool's `init` first (once), then execs the bootstrap, which keeps its pid: the
    PTY's session leader, as sshd's login shell was."""
    path = f"/tmp/swarmdeck-launcher-{nonce}.sock"
    boot = "\n".join(
        [
            "import os, socket, sys",
            f"p = {path!r}",
            "old = os.umask(0o177)",
            "srv = socket.socket(socket.AF_UNIX)",
            "srv.bind(p)",
            "os.umask(old)",
            "srv.listen(1)",
            f"print({ready_line(nonce).decode()!r}, flush=True)",
            "c, _ = srv.accept()",
            "srv.close()",
            "os.unlink(p)",
            f"sys.argv = ['launcher', str(c.fileno()), {marker.decode()!r}]",
            f"exec(compile({_SOURCE.read_text()!r}, 'launcher.py', 'exec'), "
            "{'__name__': '__main__'})",
        ]
    )
    start = f"exec python3 -I -S -c {shlex.quote(boot)}"
    return f"exec sh -c {shlex.quote(init_script(init, start))}", path
