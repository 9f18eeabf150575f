"""Drive attacks at a real bus: raw Unix-socket clients, a bus in its own process, RSS."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Raw:
    """A blocking line-JSON client that sends exactly what it is told (no helpers)."""

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self._file = self.sock.makefile("rb")

    def send(self, *frames: dict[str, Any]) -> None:
        self.sock.sendall(b"".join(json.dumps(f).encode() + b"\n" for f in frames))

    def read(self) -> dict[str, Any] | None:
        """The next frame, or None at end of stream."""
        line = self._file.readline()
        return json.loads(line) if line else None

    def call(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one command; its reply (pushed subscription frames are skipped)."""
        self.send({"op": op, "req": op, **fields})
        while (frame := self.read()) is not None:
            if "sub" not in frame or "re" in frame:
                return frame
        raise EOFError(f"{op}: the bus closed the connection")

    def close(self) -> None:
        self._file.close()
        self.sock.close()


def hello(path: str, session: str, token: str) -> Raw:
    client = Raw(path)
    reply = client.call("hello", session=session, token=token)
    assert reply["ok"], reply
    return client


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise LookupError(pid)


class BusProcess:
    def __init__(self, proc: subprocess.Popen[str], info: dict[str, Any]) -> None:
        self.proc = proc
        self.socket: str = info["socket"]
        self.tokens: dict[str, str] = info["tokens"]
        self.pid: int = info["pid"]

    def client(self, session: str = "a") -> Raw:
        return hello(self.socket, session, self.tokens[session])

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


@contextmanager
def bus_process(
    run_dir: Path, limits: dict[str, float] | None = None, **rlimits: int
) -> Iterator[BusProcess]:
    """A bus in its own process (tests.adversarial.bus_process), stopped on exit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.adversarial.bus_process", str(run_dir),
         json.dumps(limits or {}), json.dumps(rlimits)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, "the bus process did not start"
        yield BusProcess(proc, json.loads(line))
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
