"""The PTY relay process: reads every terminal's PTY on the engine's behalf.

Why a process: a PTY hands out at most ~4 KiB per read, so a flood costs the reader one
syscall per 4 KiB (~4-5 ms of CPU per MB), and in the engine that CPU would sit on the
same core, under the same GIL, as the emulator that must digest every byte. Here it runs
on the other core and hands the engine 64 KiB pipe reads instead (docs/performance.md).

Run as `python -I -S pty_relay.py CONTROL_FD`; standard library only (like launcher.py).
The control socket is a SOCK_SEQPACKET pair with the engine:

* engine -> relay: `add <id>` carrying two fds (the PTY master, the write end of a pipe
  whose read end the engine watches); `del <id>` (close both).
* relay -> engine: `eof <id>`, sent *before* it closes that pipe, when the PTY reached end
  of file; a pipe that ends without it means the relay died and the engine reads the PTY
  itself from then on.

Flow control is the pipe's: while a pipe is full its PTY is not read, so the program
blocks exactly as it would on a slow terminal. One poll round reads at most BURST bytes
per PTY, so a flood cannot starve the others. The relay exits when the engine's end of
the control socket closes, closing every fd it holds.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import sys

CHUNK = 65536
BURST = 256 * 1024  # bytes read from one PTY per poll round
IN, OUT = select.POLLIN, select.POLLOUT
GONE = select.POLLERR | select.POLLHUP | select.POLLNVAL


class Link:
    """One terminal: its PTY master, the engine's pipe, bytes the pipe could not take yet."""

    __slots__ = ("blocked", "ended", "id", "master", "pending", "pipe")

    def __init__(self, ident: bytes, master: int, pipe: int) -> None:
        self.id, self.master, self.pipe = ident, master, pipe
        self.pending = b""
        self.ended = self.blocked = False


class Relay:
    def __init__(self, ctl: socket.socket) -> None:
        self.ctl = ctl
        self.poller = select.poll()
        self.poller.register(ctl, IN)
        self.links: dict[bytes, Link] = {}
        self.by_fd: dict[int, Link] = {}

    def run(self) -> None:
        while True:
            for fd, events in self.poller.poll():
                if fd == self.ctl.fileno():
                    if not self.control():
                        return
                    continue
                link = self.by_fd.get(fd)
                if link is None:
                    continue
                if fd == link.master:
                    self.pump(link)
                elif events & OUT:
                    self.flush(link)
                elif events & GONE:  # the engine closed its end of the pipe
                    self.drop(link)

    # -- control ----------------------------------------------------------------------
    def control(self) -> bool:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(self.ctl, 64, 2)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not msg:
            return False  # the engine is gone
        op, _, ident = msg.partition(b" ")
        if op == b"add" and len(fds) == 2:
            self.add(Link(ident, fds[0], fds[1]))
        else:
            for fd in fds:
                os.close(fd)
            link = self.links.get(ident)
            if op == b"del" and link is not None:
                self.drop(link)
        return True

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
        for fd in (link.master, link.pipe):
            self.by_fd.pop(fd, None)
            with contextlib.suppress(KeyError):
                self.poller.unregister(fd)
            os.close(fd)

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
            self.finish(link)
        else:
            if link.blocked:
                link.blocked = False
                self.poller.register(link.master, IN)
            self.poller.register(link.pipe, 0)  # still hears POLLERR if the engine goes away

    def finish(self, link: Link) -> None:
        with contextlib.suppress(OSError):
            self.ctl.send(b"eof " + link.id)
        self.drop(link)


def main() -> None:
    ctl = socket.socket(fileno=int(sys.argv[1]))
    ctl.setblocking(False)
    try:
        Relay(ctl).run()
    finally:
        ctl.close()


if __name__ == "__main__":
    main()
