"""One host's connection, kept: one multiplexed SSH connection per `[[host]]`.

Every terminal on the host is a channel of it, and so is each short command (a signal to a
job's process group, the round-trip probe); together they stay within `max_channels`
(sshd's MaxSessions), waiting for a free one rather than being refused. The connection is
made when first needed and again after it drops, with exponential backoff after each
failed attempt (callers in the meantime get the last failure at once, naming the host).
While connected, a `true` exec every `keepalive` seconds measures the round trip; asyncssh's
own keepalive notices a silent drop within three of them.
"""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio

from engine.errors import HostError, HostKeyError, HostUnreachableError
from engine.statistics import HostStatistics
from engine.terminals.hosts.bus_forward import BusForward
from engine.terminals.hosts.ssh_link import open_ssh_link

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping

    from anyio.abc import TaskGroup

    from engine.deck.host_spec import HostSpec
    from engine.terminals.hosts.ssh_link import Exited, PtyChannel, SshLink, UnixStream

log = logging.getLogger(__name__)

BACKOFF_FIRST = 0.5  # s after the first failed attempt, doubling, up to BACKOFF_MAX
BACKOFF_MAX = 30.0


class HostLink:
    """The kept connection to one host, its channel budget and its figures."""

    def __init__(self, spec: HostSpec, tg: TaskGroup) -> None:
        self.spec = spec
        self._tg = tg
        self._link: SshLink | None = None
        self._connecting = anyio.Lock()
        self._slots = anyio.Semaphore(spec.max_channels)
        self._channels = 0
        self._rtt: float | None = None
        self._connects = self._failures = self._drops = 0
        self._streak = 0  # failed attempts since the last success
        self._retry_at = 0.0  # monotonic: no new attempt before this
        self._last_error: str | None = None
        self._closed = False
        self.bus = BusForward(spec.name)  # the engine's bus socket on the host

    @property
    def name(self) -> str:
        return self.spec.name

    # -- the connection -------------------------------------------------------------------
    async def link(self) -> SshLink:
        """The live connection, made now if there is none (HostError if it cannot be)."""
        if self._link is not None and not self._link.closed.is_set():
            return self._link
        async with self._connecting:
            if self._link is not None and not self._link.closed.is_set():
                return self._link
            if self._closed:
                raise HostUnreachableError(f"host {self.name!r}: the engine is closing")
            wait = self._retry_at - time.monotonic()
            if wait > 0 and self._last_error is not None:
                raise HostUnreachableError(f"{self._last_error} (next attempt in {wait:.1f}s)")
            return await self._connect()

    async def _connect(self) -> SshLink:
        try:
            link = await open_ssh_link(self.spec)
        except HostError as exc:
            self._failures += 1
            self._streak += 1
            self._last_error = str(exc)
            delay = 0.0 if isinstance(exc, HostKeyError) else _backoff(self._streak)
            self._retry_at = time.monotonic() + delay
            log.warning("%s", exc)
            raise
        self._connects += 1
        self._streak = 0
        self._link = link
        self._tg.start_soon(self._watch, link)
        self._tg.start_soon(self._probe, link)
        self._tg.start_soon(self.bus.renew, self, link)
        return link

    async def _watch(self, link: SshLink) -> None:
        await link.watch()
        if self._link is link:
            self._link = None
            if not self._closed:
                self._drops += 1
                self._last_error = link.error or f"host {self.name!r}: the connection dropped"
                log.warning("host %s: connection lost", self.name)

    async def _probe(self, link: SshLink) -> None:
        """The round trip of a `true` exec, every keepalive seconds while connected."""
        while not link.closed.is_set():
            with anyio.move_on_after(self.spec.keepalive * 3):
                try:
                    self._rtt = await self.round_trip(link)
                except HostError:
                    return
            with anyio.move_on_after(self.spec.keepalive):
                await link.closed.wait()

    async def round_trip(self, link: SshLink | None = None) -> float:
        """Seconds for a `true` exec on the host (a channel opened and its exit reported)."""
        link = link or await self.link()
        async with self._slot():
            started = time.monotonic()
            await link.run("true")
            return time.monotonic() - started

    # -- channels -------------------------------------------------------------------------
    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        async with self._slots:
            self._channels += 1
            try:
                yield
            finally:
                self._channels -= 1

    async def open_pty(
        self,
        command: str,
        cols: int,
        rows: int,
        term: str,
        on_data: Callable[[bytes], None],
        on_close: Callable[[Exception | None], None],
    ) -> PtyChannel:
        """A pty channel running `command`; it holds one of max_channels until it closes."""
        await self._slots.acquire()
        self._channels += 1
        released = False

        def closed(exc: Exception | None) -> None:
            nonlocal released
            if not released:
                released = True
                self._channels -= 1
                self._slots.release()
            on_close(exc)

        try:
            link = await self.link()
            channel = await link.open_pty(command, cols, rows, term, on_data, closed)
        except BaseException:
            if not released:
                released = True
                self._channels -= 1
                self._slots.release()
            raise
        return channel

    @asynccontextmanager
    async def unix_stream(self, path: str) -> AsyncIterator[UnixStream]:
        """A stream to a Unix socket on the host (one channel until the block ends)."""
        link = await self.link()
        async with self._slot():
            stream = await link.open_unix(path)
            try:
                yield stream
            finally:
                stream.close()

    def forward_bus(self, path: str) -> None:
        """Forward the engine's bus socket `path` to the host: now if connected, and on each
        connection (otherwise the first job that has SWARMDECK_BUS asks for it)."""
        self.bus.local = path
        if self._link is not None and not self._link.closed.is_set():
            self._tg.start_soon(self.bus.renew, self, self._link)

    async def job_env(self, env: Mapping[str, str]) -> tuple[dict[str, str], str | None]:
        """A job's environment on the host, its bus at the forwarded socket, and the directory
        to put first on its PATH (engine/terminals/hosts/bus_forward.py)."""
        return await self.bus.job_env(self, env)

    async def run(self, command: str) -> Exited:
        """Run a short command on the host (one channel while it runs)."""
        link = await self.link()
        async with self._slot():
            return await link.run(command)

    # -- figures and the end --------------------------------------------------------------
    def statistics(self) -> HostStatistics:
        connected = self._link is not None and not self._link.closed.is_set()
        return HostStatistics(
            host=self.name,
            connected=connected,
            channels=self._channels,
            max_channels=self.spec.max_channels,
            rtt=self._rtt,
            connects=self._connects,
            failures=self._failures,
            drops=self._drops,
            last_error=self._last_error,
            bus_problem=self.bus.problem,
        )

    async def aclose(self) -> None:
        self._closed = True
        link, self._link = self._link, None
        with anyio.CancelScope(shield=True):
            await self.bus.aclose(link)
        if link is not None:
            await link.aclose()


def _backoff(streak: int) -> float:
    return min(BACKOFF_FIRST * 2.0 ** (streak - 1), BACKOFF_MAX)
