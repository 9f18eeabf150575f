"""The PTY relay process: reads every terminal's PTY, and records it, on the engine's behalf.

Why a process: a PTY hands out at most ~4 KiB per read, so a flood costs the reader one
syscall per 4 KiB (~4-5 ms of CPU per MB), and recording it as asciicast costs as much
again (JSON-escaping every ESC). In the engine, that CPU would sit on the same core, under
the same GIL, as the emulator that must digest every byte. Here it runs on the other core
and hands the engine 64 KiB pipe reads instead (docs/performance.md).

Run as `python -I -S relay_process.py CONTROL_FD [MSGSPEC_DIR]`; standard library only (like
launcher.py), plus msgspec for the recordings' JSON when the engine says where it is.
The control socket is a SOCK_SEQPACKET pair with the engine:

* engine -> relay: `add <id> [<marker hex>]` carrying two fds (the PTY master, the write
  end of a pipe whose read end the engine watches; the marker is a pooled terminal's end
  of job); `del <id>` (close both); `rec <id> <json {path, header, max_size?, keep?}>`
  (record what follows as asciicast v2 until the marker, end of file or `unrec <id> <path>`;
  past max_size bytes the file is rotated, `rotate_cast`); `rsz <id>
  <COLSxROWS>` (a resize event in the recording); `drop <id> <path>` (that job never ran:
  no recording, no file); `pri <id> <seconds>` (the terminal is interactive, typed into or
  focused, for that long: `inf` until told `pri <id> 0`).
* relay -> engine: `eof <id>`, sent *before* it closes that pipe, when the PTY reached end
  of file (a pipe that ends without it means the relay died, and the engine reads the PTY
  itself from then on); `err <id> <text>` when a recording could not be written.

Ordering: the engine sends `rec` before it dispatches the job, and the relay drains its
control socket before every PTY read, so a job's first byte always finds its recording
open. A recording closes at the job's end marker before the bytes holding the marker are
forwarded, so the engine never sees a job end whose recording is still being written.
The engine dispatches the next job as soon as the launcher reports an exit, so a `rec`
may come while the previous job's last bytes and marker are still in the PTY: it then
waits for that marker, and the bytes after the marker are the new job's.

Flow control is the pipe's: while a pipe is full its PTY is not read, so the program
blocks exactly as it would on a slow terminal. One poll round reads at most BURST bytes
per PTY, so a flood cannot starve the others; interactive PTYs are served first in each
round, and again after every flooding PTY's burst (a second poll of just those), so a
typed key's echo never waits behind a round of floods (docs/performance.md, fairness).
The relay exits when the engine's end of the control socket closes, closing every fd it
holds; signals meant for the engine's process group (Ctrl-C, SIGTERM, hang-up, Ctrl-Z)
are ignored.

Size: a standalone stdlib process (`python -I -S`): it cannot import helpers from the
package.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import select
import signal
import socket
import sys
import time
from collections import deque
from typing import BinaryIO

CHUNK = 65536
BURST = 256 * 1024  # bytes read from one PTY per poll round
IN, OUT = select.POLLIN, select.POLLOUT
GONE = select.POLLERR | select.POLLHUP | select.POLLNVAL


def _stdlib_encode(event: tuple[float, str, str]) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode("utf-8", "replace")


_encode = _stdlib_encode  # main() switches to msgspec's when the engine says where it is


def _use_msgspec(path: str) -> None:
    """msgspec escapes a flood's ESCs ~4x faster than json; the relay runs without site
    packages (-I -S, for a fast start), so the engine passes msgspec's directory."""
    global _encode
    sys.path.append(path)
    try:
        import msgspec
    except ImportError:
        return
    encode = msgspec.json.Encoder().encode

    def fast(event: tuple[float, str, str]) -> bytes:
        try:
            return encode(event)
        except UnicodeEncodeError:  # a lone surrogate (never from the decoder)
            return _stdlib_encode(event)

    _encode = fast


def rotate_cast(path: str, keep: int) -> None:
    """`NAME.cast` becomes `NAME.1.cast`, `NAME.1.cast` `NAME.2.cast`, ... up to
    `NAME.<keep>.cast`; what would go past `keep` is deleted (all of it when keep is 0).
    Shared with the engine's own writer (engine/sessions/recording.py)."""
    stem = path[: -len(".cast")] if path.endswith(".cast") else path
    with contextlib.suppress(FileNotFoundError):
        os.unlink(f"{stem}.{keep}.cast" if keep else path)
    for older in range(keep - 1, 0, -1):
        with contextlib.suppress(FileNotFoundError):
            os.rename(f"{stem}.{older}.cast", f"{stem}.{older + 1}.cast")
    if keep:
        os.rename(path, f"{stem}.1.cast")


def split_output(text: str, line_size: int, room: int) -> tuple[str, str]:
    """`text`'s part that fits `room` bytes of a file (its event line is `line_size` bytes
    whole), and the rest, for the next file: a read burst may be 256 KiB, far past a cap."""
    if line_size <= room or len(text) < 2:
        return text, ""
    cut = min(len(text) - 1, max(1, len(text) * max(room, 0) // line_size))
    return text[:cut], text[cut:]


def open_cast(path: str, header: dict[str, object], flags: int = os.O_TRUNC) -> BinaryIO:
    """A new recording file, 0600 whatever the umask: it is everything the session printed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | flags, 0o600)
    file = os.fdopen(fd, "wb", buffering=0)
    if flags & os.O_TRUNC:
        file.write(json.dumps(header, ensure_ascii=False).encode() + b"\n")
    return file


class Recording:
    """One open asciicast v2 file, unbuffered: each event is one write(2) (one per PTY read
    burst), so a relay that is killed has lost nothing it recorded and leaves whole lines
    for the engine to go on from (engine/sessions/records.py). With `max_size`, the event
    that takes the file past it is its last: the file is rotated and a new one begins,
    with a header of its own (the current size) and times from 0, so each plays alone."""

    def __init__(
        self, path: str, header: dict[str, object], max_size: int | None = None, keep: int = 0
    ) -> None:
        self.path, self.header, self.max_size, self.keep = path, header, max_size, keep
        self.file: BinaryIO = open_cast(path, header)
        self.size = self.file.tell()
        self.start = time.monotonic()
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def event(self, code: str, text: str) -> None:
        while text:
            now = time.monotonic()
            line = _encode((round(now - self.start, 6), code, text)) + b"\n"
            rest = ""
            if self.max_size is not None and code == "o":
                text, rest = split_output(text, len(line), self.max_size - self.size)
                if rest:
                    line = _encode((round(now - self.start, 6), code, text)) + b"\n"
            self.file.write(line)
            self.size += len(line)
            if code == "r":
                cols, _, rows = text.partition("x")
                self.header = {**self.header, "width": int(cols), "height": int(rows)}
            if self.max_size is not None and self.size >= self.max_size:
                self.rotate()
            text = rest

    def rotate(self) -> None:
        self.file.close()
        rotate_cast(self.path, self.keep)
        self.header = {**self.header, "timestamp": int(time.time())}
        self.file = open_cast(self.path, self.header)
        self.size = self.file.tell()
        self.start = time.monotonic()

    def output(self, data: bytes) -> None:
        self.event("o", self.decoder.decode(data))

    def close(self) -> None:
        self.event("o", self.decoder.decode(b"", final=True))
        self.file.close()


class Link:
    """One terminal: its PTY master, the engine's pipe, bytes the pipe could not take yet."""

    __slots__ = (
        *("blocked", "ended", "held", "id", "in_job", "marker", "master", "next_orders"),
        *("pending", "pipe", "rec", "urgent_until"),
    )

    def __init__(self, ident: bytes, master: int, pipe: int, marker: bytes) -> None:
        self.id, self.master, self.pipe, self.marker = ident, master, pipe, marker
        self.pending = b""
        self.held = b""  # a possible start of the marker, not recorded yet
        self.rec: Recording | None = None
        self.in_job = False  # a recorded job's end marker is still to come
        # Recordings of jobs still to come, one per end marker: the job running now may
        # have a follower queued, and the engine may already have given that one its own.
        self.next_orders: deque[dict[str, object]] = deque()
        self.ended = self.blocked = False
        self.urgent_until = 0.0  # monotonic: interactive until then


class Relay:
    def __init__(self, ctl: socket.socket) -> None:
        self.ctl = ctl
        self.poller = select.poll()
        self.poller.register(ctl, IN)
        self.links: dict[bytes, Link] = {}
        self.by_fd: dict[int, Link] = {}
        self.urgent: dict[bytes, Link] = {}  # interactive links (some may have expired)
        self.open = True

    def run(self) -> None:
        while self.open:
            self.round()
        for link in list(self.links.values()):
            self.drop(link)

    def round(self, timeout: float | None = None) -> None:
        """One poll round: interactive PTYs first, then the rest, each flood's burst
        followed by another look at the interactive ones."""
        ready = self.poller.poll(None if timeout is None else timeout * 1000)
        if not self.urgent:
            for fd, events in ready:
                self.serve(fd, events)
            return
        now = time.monotonic()
        ready.sort(key=lambda item: not self._is_urgent(item[0], now))
        for fd, events in ready:
            flood = fd in self.by_fd and fd == self.by_fd[fd].master
            flood = flood and not self._is_urgent(fd, now)
            self.serve(fd, events)
            if flood:
                self.serve_urgent()

    def _is_urgent(self, fd: int, now: float) -> bool:
        link = self.by_fd.get(fd)
        return link is not None and fd == link.master and link.urgent_until > now

    def serve(self, fd: int, events: int) -> None:
        if fd == self.ctl.fileno():
            self.drain()
            return
        link = self.by_fd.get(fd)
        if link is None:
            return
        if fd == link.master:
            if link.blocked or not events & (IN | GONE):
                return  # served already this round (an interactive one), or blocked since
            self.drain()  # a `rec` sent before this job's output must apply to it
            if self.links.get(link.id) is link:
                self.pump(link)
        elif events & OUT:
            self.flush(link)
        elif events & GONE:  # the engine closed its end of the pipe
            self.drop(link)

    def serve_urgent(self) -> None:
        """Read every interactive PTY that has output now (poll with no wait)."""
        now = time.monotonic()
        for ident, link in list(self.urgent.items()):
            if link.urgent_until <= now or self.links.get(ident) is not link:
                del self.urgent[ident]
            elif not link.blocked and select.select([link.master], [], [], 0)[0]:
                self.drain()
                if self.links.get(ident) is link:
                    self.pump(link)

    # -- control ----------------------------------------------------------------------
    def drain(self) -> None:
        """Apply every control message waiting, in order."""
        while self.open:
            try:
                msg, fds, _flags, _addr = socket.recv_fds(self.ctl, 65536, 2)
            except BlockingIOError:
                return
            except OSError:
                msg, fds = b"", []
            if not msg:
                self.open = False  # the engine is gone
                return
            self.apply(msg, fds)

    def apply(self, msg: bytes, fds: list[int]) -> None:
        op, _, rest = msg.partition(b" ")
        ident, _, arg = rest.partition(b" ")
        if op == b"add" and len(fds) == 2:
            self.add(Link(ident, fds[0], fds[1], bytes.fromhex(arg.decode())))
            return
        for fd in fds:
            os.close(fd)
        link = self.links.get(ident)
        if link is None:
            return
        if op == b"del":
            self.drop(link)
        elif op == b"rec":
            self.record(link, json.loads(arg))
        elif op == b"unrec":
            self.unrecord(link, arg.decode())
        elif op == b"drop":
            self.discard(link, arg.decode())
        elif op == b"rsz" and link.rec is not None:
            link.rec.event("r", arg.decode())
        elif op == b"pri":
            seconds = float(arg.decode())
            link.urgent_until = time.monotonic() + seconds if seconds > 0 else 0.0
            if seconds > 0:
                self.urgent[link.id] = link
            else:
                self.urgent.pop(link.id, None)

    def add(self, link: Link) -> None:
        os.set_blocking(link.master, False)
        os.set_blocking(link.pipe, False)
        self.links[link.id] = link
        self.by_fd[link.master] = self.by_fd[link.pipe] = link
        self.poller.register(link.master, IN)
        self.poller.register(link.pipe, 0)

    def drop(self, link: Link) -> None:
        if self.links.pop(link.id, None) is None:
            return
        self.stop_recording(link)
        for fd in (link.master, link.pipe):
            self.by_fd.pop(fd, None)
            with contextlib.suppress(KeyError):
                self.poller.unregister(fd)
            os.close(fd)

    def say(self, msg: bytes) -> None:
        with contextlib.suppress(OSError):
            self.ctl.send(msg)

    # -- recordings -------------------------------------------------------------------
    def record(self, link: Link, order: dict[str, object]) -> None:
        if link.in_job:  # the previous job's last bytes and marker are still to come
            link.next_orders.append(order)
            return
        self.stop_recording(link)
        link.held = b""
        link.in_job = bool(link.marker)
        try:
            os.makedirs(os.path.dirname(str(order["path"])), exist_ok=True)
            limit = order.get("max_size")
            link.rec = Recording(
                str(order["path"]),
                dict(order["header"]),  # type: ignore[call-overload]
                limit if isinstance(limit, int) else None,
                int(order.get("keep") or 0),  # type: ignore[call-overload]
            )
        except OSError as exc:
            self.say(b"err " + link.id + b" " + f"cannot record {order['path']}: {exc}".encode())

    def unrecord(self, link: Link, path: str) -> None:
        """The engine is done with the recording at `path` (one the marker did not end)."""
        if not _forget_order(link, path) and link.rec is not None and link.rec.path == path:
            self.stop_recording(link)

    def discard(self, link: Link, path: str) -> None:
        """The job to record at `path` never ran (a dropped follower): no file, and no
        marker of its own to wait for."""
        if _forget_order(link, path):
            return
        if link.rec is not None and link.rec.path == path:
            link.rec.file.close()
            link.rec = None
            link.in_job = False
            link.held = b""
            with contextlib.suppress(OSError):
                os.unlink(path)

    def stop_recording(self, link: Link) -> None:
        rec, link.rec = link.rec, None
        if rec is None:
            return
        try:
            rec.output(link.held)
            link.held = b""
            rec.close()
        except OSError as exc:
            self.say(b"err " + link.id + b" " + f"recording: {exc}".encode())

    def tap(self, link: Link, data: bytes) -> None:
        """Record `data` up to the job's end marker; the marker ends the recording, and
        starts the next job's when its `rec` came early."""
        marker = link.marker
        if not marker:
            if link.rec is not None:
                link.rec.output(data)
            return
        while link.in_job:
            data = link.held + data
            link.held = b""
            at = data.find(marker)
            if at < 0:
                keep = partial_suffix(data, marker)
                if link.rec is not None:
                    link.rec.output(data[: len(data) - keep])
                link.held = data[len(data) - keep :]
                return
            if link.rec is not None:
                link.rec.output(data[:at])
            self.stop_recording(link)
            link.in_job = False
            data = data[at + len(marker) :]
            if link.next_orders:
                self.record(link, link.next_orders.popleft())

    # -- data -------------------------------------------------------------------------
    def pump(self, link: Link) -> None:
        chunks: list[bytes] = []
        total = 0
        while total < BURST:
            try:
                data = os.read(link.master, CHUNK)
            except BlockingIOError:
                break
            except OSError:  # EIO: every slave end is closed
                data = b""
            if not data:
                link.ended = True
                break
            chunks.append(data)
            total += len(data)
        link.pending = b"".join(chunks)
        try:
            self.tap(link, link.pending)
        except OSError as exc:
            self.say(b"err " + link.id + b" " + f"recording: {exc}".encode())
            link.rec = None
        if link.ended:
            self.stop_recording(link)
        self.flush(link)

    def flush(self, link: Link) -> None:
        """Write what is pending; read the PTY again only once the pipe took all of it."""
        view = memoryview(link.pending)
        try:
            while view:
                view = view[os.write(link.pipe, view) :]
        except BlockingIOError:
            pass
        except OSError:  # EPIPE: the engine closed its end
            self.drop(link)
            return
        link.pending = bytes(view)
        if link.pending:  # stop reading the PTY until the pipe drains
            if not link.blocked:
                link.blocked = True
                self.poller.unregister(link.master)
            self.poller.register(link.pipe, OUT)
        elif link.ended:
            self.say(b"eof " + link.id)
            self.drop(link)
        else:
            if link.blocked:
                link.blocked = False
                self.poller.register(link.master, IN)
            self.poller.register(link.pipe, 0)  # still hears POLLERR if the engine goes away


def _forget_order(link: Link, path: str) -> bool:
    """Drop the queued recording order for `path`; False if there is none."""
    for order in link.next_orders:
        if order["path"] == path:
            link.next_orders.remove(order)
            return True
    return False


def partial_suffix(data: bytes, marker: bytes) -> int:
    """Length of the longest suffix of data that is a proper prefix of marker (the engine's
    pooled terminals cut output at the same marker with this)."""
    start = data.rfind(marker[:1], max(0, len(data) - len(marker) + 1))
    if start < 0:
        return 0
    return len(data) - start if marker.startswith(data[start:]) else 0


def main() -> None:
    # The engine ends the relay (by closing the control socket; SIGKILL if it lingers),
    # never a signal meant for the engine: Ctrl-C, a hang-up or `kill -TERM -PGID` reach
    # the relay too (same process group), and it must keep relaying the sessions' last
    # output while the engine stops them.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP, signal.SIGTSTP):
        signal.signal(signum, signal.SIG_IGN)
    if len(sys.argv) > 2:
        _use_msgspec(sys.argv[2])
    ctl = socket.socket(fileno=int(sys.argv[1]))
    ctl.setblocking(False)
    try:
        Relay(ctl).run()
    finally:
        ctl.close()


if __name__ == "__main__":
    main()
