"""The text watch view of `swarmdeck attach`: facts as JSON lines (no samples), a few keys.

`swarmdeck attach --headless --watch`: for logs, scripts and terminals where the control
room is not wanted. Every CONTENTION_EVERY samples it prints the contention model's figures
with their sparklines as `--` lines (tui/cli/figures.py). With a terminal on both ends it
reads keys without echo (p: pause every active session, r: resume every paused one, q or
^C: detach) and reports the
terminal's size at start and on every SIGWINCH. A viewer's keys reach the engine like an
operator's and are refused there (NotPermittedError, and a command-refused event).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import termios
from contextlib import contextmanager
from typing import TYPE_CHECKING

import anyio

from engine import SwarmdeckError
from tui.cli.figures import contention_lines

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from engine.remote import RemoteEngine

DETACH = (b"q", b"\x03", b"\x04")
QUIET = {"screen-changed", "pool-sampled", "scheduler-sampled", "contention-sampled"}
CONTENTION_EVERY = 10


async def watch(remote: RemoteEngine, show_screens: Callable[[], None]) -> None:
    """Show the screens, then print events until the engine goes or the user detaches."""
    keys = sys.stdin.isatty() and sys.stdout.isatty()
    with _keys_mode(sys.stdin.fileno()) if keys else contextlib.nullcontext():
        show_screens()
        read_only = " (read-only)" if remote.role != "operator" else ""
        hint = "  keys: p pause, r resume, q detach" if keys else ""
        print(f"-- attached as {remote.role}{read_only}{hint}", flush=True)
        async with anyio.create_task_group() as tg:
            if keys:
                tg.start_soon(_sizes)
                tg.start_soon(_keys, remote, tg.cancel_scope)
            samples = 0
            with remote.subscribe() as events:
                async for event in events:
                    if event.kind == "contention-sampled":
                        samples += 1
                        if samples % CONTENTION_EVERY == 1:
                            _print_contention(remote)
                    elif event.kind not in QUIET:
                        print(event.model_dump_json(), flush=True)
            tg.cancel_scope.cancel()


def _print_contention(remote: RemoteEngine) -> None:
    lines = contention_lines(remote.contention_history())
    print("\n".join(f"-- {line}" for line in lines), flush=True)


async def _sizes() -> None:
    with anyio.open_signal_receiver(signal.SIGWINCH) as winches:
        _print_size()
        async for _ in winches:
            _print_size()


def _print_size() -> None:
    size = os.get_terminal_size(sys.stdout.fileno())
    print(f"-- terminal {size.columns}x{size.lines}", flush=True)


async def _keys(remote: RemoteEngine, scope: anyio.CancelScope) -> None:
    fd = sys.stdin.fileno()
    while True:
        await anyio.wait_readable(fd)
        data = os.read(fd, 1024)
        if not data or any(key in data for key in DETACH):
            scope.cancel()
            return
        for key in data.decode(errors="replace"):
            await _act(remote, key)


async def _act(remote: RemoteEngine, key: str) -> None:
    if key not in ("p", "r"):
        return
    try:
        await (remote.pause_all() if key == "p" else remote.resume_all())
    except SwarmdeckError as exc:
        print(f"-- refused: {exc}", flush=True)


@contextmanager
def _keys_mode(fd: int) -> Iterator[None]:
    """No echo, no line editing; output processing on (lines end in CR LF even on a raw PTY)."""
    saved = termios.tcgetattr(fd)
    mode = termios.tcgetattr(fd)
    mode[3] &= ~(termios.ECHO | termios.ICANON)
    mode[1] |= termios.OPOST | termios.ONLCR
    termios.tcsetattr(fd, termios.TCSANOW, mode)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, saved)
