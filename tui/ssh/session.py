"""One SSH session channel: a terminal gets a control-room child, anything else a refusal.

What the child runs and as which role is decided by the server (`Launch`), never by the
client: the client only picks the terminal type and size (clamped), and what it may cost
is bounded in tui/ssh/limits.py. Refusals are written to the client's stderr with exit
status 1, so `ssh` prints a sentence instead of a bare "request failed".
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncssh

from engine import SwarmdeckError
from tui.ssh.child import ChildTerminal
from tui.ssh.limits import AUDIT_RESIZE_EVERY, RESIZE_EVERY, Coalescer, clamp_size

if TYPE_CHECKING:
    from collections.abc import Callable

NEEDS_TERMINAL = "swarmdeck needs a terminal: use ssh -t"
NO_COMMANDS = "swarmdeck runs no commands over SSH: connect with ssh -t and no command"
_DROPPED_ENV = ("COLUMNS", "LINES", "COLORTERM", "TEXTUAL_COLOR_SYSTEM", "SWARMDECK_ROLE")


@dataclass(frozen=True)
class Launch:
    """Server-side facts for one connection's child: never taken from the client."""

    socket: str
    role: str
    grace: float
    idle_timeout: float
    record: Callable[..., None]
    """The audit log's `record(event, **fields)`, already bound to this peer and key."""
    children: set[ChildTerminal]
    """Every live child of the server, so stopping it can hang them all up and wait."""
    ended: Callable[[], None] = lambda: None
    """Called once when the session's channel is gone (its connection counts sessions)."""

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "tui.cli", "attach", self.socket, "--role", self.role]

    def env(self, term: str) -> dict[str, str]:
        """The server's environment, minus size hints (the PTY has the size), with TERM
        from the client and a colour depth chosen here: truecolor only when TERM says so."""
        env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
        env["TERM"] = term or "xterm-256color"
        truecolor = any(word in env["TERM"] for word in ("truecolor", "24bit", "direct"))
        if truecolor:
            env["COLORTERM"] = "truecolor"
        env["TEXTUAL_COLOR_SYSTEM"] = "truecolor" if truecolor else "256"
        env["SWARMDECK_ROLE"] = self.role
        return env


class TerminalSession(asyncssh.SSHServerSession[bytes]):
    def __init__(self, launch: Launch) -> None:
        self._launch = launch
        self._chan: asyncssh.SSHServerChannel[bytes] | None = None
        self._term: str | None = None
        self._size = (80, 24)
        self._refusal: str | None = None
        self._child: ChildTerminal | None = None
        self._last_input = 0.0
        self._idle: asyncio.TimerHandle | None = None
        self._resizes = Coalescer(RESIZE_EVERY, self._resize_child)
        self._audited = Coalescer(AUDIT_RESIZE_EVERY, self._audit_resize)

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        self._chan = chan

    def pty_requested(
        self, term_type: str, term_size: tuple[int, int, int, int], term_modes: object
    ) -> bool:
        self._term, self._size = term_type, clamp_size(term_size[0], term_size[1], (80, 24))
        return True

    def shell_requested(self) -> bool:
        return True

    def exec_requested(self, command: str) -> bool:
        self._refuse(NO_COMMANDS, f"exec request: {command[:200]}")
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        self._launch.record("refused", reason=f"subsystem {subsystem!r} (no SFTP/SCP)")
        return False

    def session_started(self) -> None:
        assert self._chan is not None
        if self._refusal is None and self._term is None:
            self._refuse(NEEDS_TERMINAL, "session without a PTY")
        if self._refusal is not None:
            self._chan.write_stderr(f"{self._refusal}\r\n".encode())
            self._chan.exit(1)
            return
        launch = self._launch
        env = launch.env(self._term or "")
        try:
            child = ChildTerminal(
                launch.argv(), env, self._size, self._output, self._exited, self._drained
            )
        except (SwarmdeckError, OSError) as exc:
            launch.record("child-failed", error=str(exc))
            self._chan.write_stderr(f"swarmdeck: cannot start the control room: {exc}\r\n".encode())
            self._chan.exit(1)
            return
        self._child = child
        launch.children.add(child)
        launch.record("child-started", pid=child.pid, term=env["TERM"], size=self._size)
        self._touch()

    def _refuse(self, message: str, reason: str) -> None:
        if self._refusal is None:
            self._refusal = message
            self._launch.record("refused", reason=reason)

    # -- while it runs --------------------------------------------------------------------
    def _output(self, data: bytes) -> None:
        if self._chan is not None and not self._chan.is_closing():
            self._chan.write(data)

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self._touch()
        if self._child is not None and not self._child.write(data) and self._chan is not None:
            self._chan.pause_reading()  # the SSH window closes: the client waits, not us

    def _drained(self) -> None:
        if self._chan is not None and not self._chan.is_closing():
            self._chan.resume_reading()

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        self._touch()
        self._size = clamp_size(width, height, self._size)
        if self._child is not None:
            self._resizes.submit(self._size)

    def _resize_child(self, size: tuple[int, int], changes: int) -> None:
        if self._child is not None:
            self._child.resize(*size)
            self._audited.submit(size)

    def _audit_resize(self, size: tuple[int, int], changes: int) -> None:
        self._launch.record("resize", cols=size[0], rows=size[1], changes=changes)

    def eof_received(self) -> bool:
        return True  # a terminal's end of input is not the end of the session

    def pause_writing(self) -> None:
        if self._child is not None:
            self._child.pause_output()

    def resume_writing(self) -> None:
        if self._child is not None:
            self._child.resume_output()

    # -- ending ---------------------------------------------------------------------------
    def _exited(self, status: int) -> None:
        self._launch.record("child-exited", status=status)
        if self._child is not None:
            self._launch.children.discard(self._child)
        if self._idle is not None:
            self._idle.cancel()
        if self._chan is None or self._chan.is_closing():
            return
        if status < 0:
            self._chan.exit_with_signal(signal.Signals(-status).name.removeprefix("SIG"))
        else:
            self._chan.exit(status)

    def connection_lost(self, exc: Exception | None) -> None:
        """The client went away (or we closed the channel): hang up the child."""
        if self._child is not None:
            self._child.hang_up(self._launch.grace)
        if self._idle is not None:
            self._idle.cancel()
        self._resizes.cancel()
        self._audited.cancel()
        self._launch.ended()

    def _touch(self) -> None:
        """Idle means no input: a live screen streaming out does not keep a seat taken."""
        loop = asyncio.get_running_loop()
        self._last_input = loop.time()
        if self._idle is None:
            self._idle = loop.call_later(self._launch.idle_timeout, self._check_idle)

    def _check_idle(self) -> None:
        loop = asyncio.get_running_loop()
        left = self._last_input + self._launch.idle_timeout - loop.time()
        if left > 0:
            self._idle = loop.call_later(left, self._check_idle)
            return
        self._launch.record("idle-timeout", seconds=self._launch.idle_timeout)
        if self._chan is not None:
            self._chan.write_stderr(b"\r\nswarmdeck: idle too long, disconnected\r\n")
            self._chan.close()
