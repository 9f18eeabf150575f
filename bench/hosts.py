"""Sessions on a host over SSH against local ones: start latency and ingest through one
connection (docs/hosts.md).

Start latency runs from the request to the first byte of the job's output delivered to
the sink, through the engine's own code: `TerminalPool.acquire` + a warm pooled terminal
or a fresh PTY locally; remotely `HostPool.acquire` + a warm remote terminal (the
launcher on a PTY channel of the host, its health check, the job's request over the
control stream) or `RemoteTerminal.start` (a new pty channel on the host's kept
connection, the pid marker, then the job). Ingest: 8 remote jobs each print
`--mb` MB of text at once; the figure is total bytes over the time until the last one
has exited (one SSH connection carries all of them). Cases run round-robin so the shared
machine's noise hits each alike.

By default the host is a loopback sshd started for the run (tests/sshd_support.py), so
the figures show the SSH and sshd cost without a network; `--ssh user@host:port
--identity KEY --known-hosts FILE` measures a real host.

    python bench/hosts.py [--runs N] [--mb N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from engine.deck.host_spec import HostSpec
from engine.deck.spec import PoolSpec
from engine.terminals.fresh import FreshTerminal
from engine.terminals.hosts.host_link import HostLink
from engine.terminals.hosts.host_pool import HostPool
from engine.terminals.hosts.remote_pooled import RemotePooledTerminal
from engine.terminals.hosts.remote_terminal import RemoteTerminal
from engine.terminals.pool import open_pool
from engine.terminals.pool_core import limits_of
from engine.terminals.pooled import PooledTerminal
from engine.terminals.terminal import Job

if TYPE_CHECKING:
    from collections.abc import Iterator

    from anyio.abc import TaskGroup

    from engine.terminals.pool import TerminalPool

JOB = Job(["sh", "-c", "printf x"])
FLOODERS = 8


class FirstByte:
    def __init__(self) -> None:
        self.event = anyio.Event()
        self.bytes = 0

    def __call__(self, data: bytes) -> None:
        self.bytes += len(data)
        self.event.set()


async def local_start(pool: TerminalPool, kind: str, tg: TaskGroup) -> float:
    sink = FirstByte()
    t0 = time.perf_counter()
    term = await pool.acquire("pooled" if kind == "warm" else "fresh")
    if isinstance(term, PooledTerminal):
        await term.start(JOB, sink)
    else:
        assert isinstance(term, FreshTerminal)
        await term.start(JOB, sink, tg)
    await sink.event.wait()
    took = time.perf_counter() - t0
    await term.wait()
    pool.release(term)
    return took


async def remote_start(link: HostLink, tg: TaskGroup) -> float:
    sink = FirstByte()
    t0 = time.perf_counter()
    term = RemoteTerminal(link, 80, 24)
    await term.start(JOB, sink, tg)
    await sink.event.wait()
    took = time.perf_counter() - t0
    await term.wait()
    await term.aclose()
    return took


async def remote_warm(pool: HostPool) -> float:
    """A session's start on a host's warm terminal, as the engine leases one."""
    sink = FirstByte()
    t0 = time.perf_counter()
    term = await pool.acquire()
    assert isinstance(term, RemotePooledTerminal)
    await term.start(JOB, sink)
    await sink.event.wait()
    took = time.perf_counter() - t0
    ended = await term.wait_exit()
    await ended.drained()
    pool.release(term)
    return took


async def remote_ingest(link: HostLink, tg: TaskGroup, mb: int) -> float:
    """MB/s of 8 jobs flooding at once through the one connection."""
    script = f"head -c {mb * 1_000_000} /dev/zero | tr '\\0' 'y' | fold -w 99"
    sinks = [FirstByte() for _ in range(FLOODERS)]
    terms = [RemoteTerminal(link, 120, 32) for _ in range(FLOODERS)]
    t0 = time.perf_counter()
    for term, sink in zip(terms, sinks, strict=True):
        await term.start(Job(["sh", "-c", script], cols=120, rows=32), sink, tg)
    for term in terms:
        await term.wait()
    took = time.perf_counter() - t0
    for term in terms:
        await term.aclose()
    return sum(sink.bytes for sink in sinks) / took / 1e6


@contextlib.contextmanager
def loopback_host() -> Iterator[HostSpec]:
    from tests.sshd_support import running_sshd  # a bench-only, test-only helper

    with tempfile.TemporaryDirectory() as tmp, running_sshd(Path(tmp) / "sshd") as server:
        yield host_spec(server.address, str(server.identity), str(server.known_hosts))


def host_spec(ssh: str, identity: str | None, known_hosts: str | None) -> HostSpec:
    fields: dict[str, object] = {"name": "bench", "ssh": ssh, "pool": {"size": 4, "warm": 1}}
    fields["max_channels"] = 10
    if identity:
        fields["identity"] = identity
    if known_hosts:
        fields["known_hosts"] = known_hosts
    return HostSpec.model_validate(fields)


async def measure(spec: HostSpec, runs: int, mb: int) -> None:
    names = ("local warm", "local fresh", "remote warm", "remote fresh")
    cases: dict[str, list[float]] = {name: [] for name in names}
    local = PoolSpec(size=2, warm=1)
    async with open_pool(local) as pool, anyio.create_task_group() as tg:
        link = HostLink(spec, tg)
        await link.run("true")  # the connection is made once, as in a run
        limits = limits_of(local, spec.pool.size, spec.pool.warm)
        remote = HostPool(link, limits, tg, pool.turns)
        await remote.prewarm()  # as the engine does at start for a host with warm > 0
        tg.start_soon(remote.maintain)
        for _ in range(runs):
            cases["local warm"].append(await local_start(pool, "warm", tg))
            cases["local fresh"].append(await local_start(pool, "fresh", tg))
            cases["remote warm"].append(await remote_warm(remote))
            cases["remote fresh"].append(await remote_start(link, tg))
        await remote.aclose()
        rtt = await link.round_trip()
        ingest = [await remote_ingest(link, tg, mb) for _ in range(2)]
        await link.aclose()
        tg.cancel_scope.cancel()
    print(f"start latency, request -> first byte ({runs} runs each; host RTT {rtt * 1e3:.2f} ms)")
    for name, values in cases.items():
        values.sort()
        p50, p95 = values[len(values) // 2], values[int(len(values) * 0.95) - 1]
        print(f"  {name:13s} p50 {p50 * 1e3:7.2f} ms   p95 {p95 * 1e3:7.2f} ms")
    print(f"remote ingest, {FLOODERS} flooding sessions x {mb} MB over one SSH connection:")
    print(f"  {statistics.mean(ingest):.1f} MB/s (runs: {', '.join(f'{v:.1f}' for v in ingest)})")
    print(f"load: {os.getloadavg()[0]:.2f} (1 min)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--mb", type=int, default=4, help="MB printed by each flooding job")
    parser.add_argument("--ssh", help="user@host:port of a real host (default: loopback sshd)")
    parser.add_argument("--identity")
    parser.add_argument("--known-hosts")
    args = parser.parse_args()
    if args.ssh:
        anyio.run(measure, host_spec(args.ssh, args.identity, args.known_hosts), args.runs, args.mb)
        return
    with loopback_host() as spec:
        anyio.run(measure, spec, args.runs, args.mb)


if __name__ == "__main__":
    main()
