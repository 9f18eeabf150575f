"""The engine's side of the PTY relay (terminals/relay_process.py): start it, hand it terminals.

A terminal `attach`es its PTY master and gets back the read end of a pipe carrying the
same bytes in the same order, in reads up to 16x larger; `record` has the relay write the
asciicast recording too, so neither the 4 KiB reads nor the JSON escaping load the engine.
When that pipe ends, `ended` tells a real end of file (the relay said `eof` first) from a
relay that died, in which case the terminal reads its PTY itself: losing the relay slows
the engine down and cuts that attempt's recording short, nothing more. Without a relay (it
could not start) terminals read their PTYs and the engine records, as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.abc
import msgspec

from engine.terminals.procs import reap
from engine.terminals.socket_io import receive
from engine.terminals.supervise import supervise

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

log = logging.getLogger(__name__)
RELAY = str(Path(__file__).with_name("relay_process.py"))
_MSGSPEC_DIR = str(Path(msgspec.__file__).parent.parent)  # the relay runs without site
PIPE_SIZE = 256 * 1024  # 4x the default: fewer wake-ups; 64 terminals cost 16 MiB at most
Rotation = tuple[int, int] | None
"""A recording's (max_size, keep): rotated past max_size bytes, `keep` old files kept."""


class PtyRelay:
    """A running relay process and the terminals attached to it."""

    def __init__(self, popen: subprocess.Popen[bytes], ctl: socket.socket) -> None:
        self._popen = popen
        self._ctl = ctl
        self._ended: dict[int, anyio.Event] = {}
        self._eof: set[int] = set()
        self._dead = anyio.Event()

    @property
    def alive(self) -> bool:
        return not self._dead.is_set()

    async def wait_dead(self) -> None:
        await self._dead.wait()

    @property
    def pid(self) -> int:
        return self._popen.pid

    def attach(self, ident: int, master: int, marker: bytes = b"") -> int | None:
        """Relay `master` into a new pipe; return the pipe's read end (None: read it yourself).

        `marker` ends each job's output on a pooled terminal: the relay ends its recording there.
        """
        if not self.alive:
            return None
        read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        with contextlib.suppress(OSError):  # over the per-user pipe budget: keep the default
            fcntl.fcntl(read_end, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        try:
            add = b"add %d %s" % (ident, marker.hex().encode())
            socket.send_fds(self._ctl, [add], [master, write_end])
        except OSError:
            os.close(read_end)
            return None
        finally:
            os.close(write_end)
        self._ended[ident] = anyio.Event()
        return read_end

    def record(
        self, ident: int, path: Path, header: dict[str, object], rotation: Rotation = None
    ) -> bool:
        """Have the relay record the terminal's output from now on, as asciicast v2 at
        `path`, until its job's end marker or end of file, rotated past `rotation`'s
        (max_size, keep); False if it cannot (dead)."""
        fields: dict[str, object] = {"path": str(path.absolute()), "header": header}
        if rotation is not None:
            fields["max_size"], fields["keep"] = rotation
        order = json.dumps(fields, ensure_ascii=False)
        return self._say(b"rec %d %s" % (ident, order.encode()))

    def record_resize(self, ident: int, cols: int, rows: int) -> None:
        self._say(b"rsz %d %dx%d" % (ident, cols, rows))

    def prioritise(self, ident: int, seconds: float) -> None:
        """Serve the terminal before flooding ones for `seconds` (inf: until told 0)."""
        self._say(b"pri %d %s" % (ident, repr(float(seconds)).encode()))

    def stop_recording(self, ident: int, path: Path) -> None:
        """Stop recording to `path` (unless the job's end marker already did)."""
        self._say(b"unrec %d %s" % (ident, _path_arg(path)))

    def discard_recording(self, ident: int, path: Path) -> None:
        """The job to record at `path` never ran: forget it, and delete the file if it
        was opened already."""
        self._say(b"drop %d %s" % (ident, _path_arg(path)))

    def _say(self, msg: bytes) -> bool:
        if not self.alive:
            return False
        try:
            self._ctl.send(msg)
        except OSError:
            return False
        return True

    async def ended(self, ident: int) -> bool:
        """After the pipe ended: True for the PTY's real end, False if the relay died."""
        event = self._ended.get(ident)
        if event is not None:
            with anyio.move_on_after(5.0):  # `eof` is sent before the pipe closes
                await event.wait()
        return ident in self._eof

    def detach(self, ident: int) -> None:
        """Forget the terminal; the relay closes its copies of the fds."""
        self._ended.pop(ident, None)
        self._eof.discard(ident)
        self._say(b"del %d" % ident)

    async def _listen(self) -> None:
        try:
            while msg := await receive(self._ctl):
                op, _, rest = msg.partition(b" ")
                ident, _, text = rest.partition(b" ")
                if op == b"eof" and int(ident) in self._ended:
                    self._eof.add(int(ident))
                    self._ended[int(ident)].set()
                elif op == b"err":
                    log.warning("pty relay, terminal %s: %s", ident.decode(), text.decode())
        except OSError:
            pass
        finally:
            self._dead.set()
            for event in self._ended.values():
                event.set()

    async def aclose(self) -> None:
        """Close the control socket (the relay exits on it) and reap the process."""
        self._dead.set()
        with contextlib.suppress(OSError):
            self._ctl.shutdown(socket.SHUT_RDWR)
        with anyio.CancelScope(shield=True):
            if await reap(self._popen, 2.0) is None:
                self._popen.kill()
                await reap(self._popen, 2.0)
        self._ctl.close()


def _path_arg(path: Path) -> bytes:
    """A recording's path as the relay matches it (the `path` of its `rec` order)."""
    return str(path.absolute()).encode()


def _spawn(fd: int) -> subprocess.Popen[bytes] | None:
    """Start the relay (vfork, like every spawn here: ~1 ms, not worth a thread)."""
    try:
        argv = [sys.executable, "-I", "-S", RELAY, str(fd), _MSGSPEC_DIR]
        return subprocess.Popen(argv, pass_fds=[fd], stdin=subprocess.DEVNULL)
    except OSError:
        return None


@contextlib.asynccontextmanager
async def open_relay() -> AsyncIterator[PtyRelay | None]:
    """Run a relay for the block; yields None if it cannot start (terminals read directly)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with theirs:
        popen = _spawn(theirs.fileno())
    if popen is None:
        ours.close()
        yield None
        return
    ours.setblocking(False)
    relay = PtyRelay(popen, ours)
    async with anyio.create_task_group() as tg:
        tg.start_soon(relay._listen)
        try:
            yield relay
        finally:
            await relay.aclose()
            tg.cancel_scope.cancel()


async def run_relays(
    adopt: Callable[[PtyRelay | None], None],
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Keep a relay running for new terminals (engine/terminals/supervise.py)."""
    await supervise(open_relay, adopt, "pty relay", task_status=task_status)
