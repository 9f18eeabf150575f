"""Eight flooding sessions on a host, through the whole engine, against the same eight run
locally: what an operator meets when a deck's test shards print as fast as they can.

bench/hosts.py measures the transport alone (its sink only counts bytes). Here each
session is a deck session like any other: its output crosses the host's one SSH
connection, then the engine emulates it (avt), records it (asciicast) and keeps its
screen, exactly as for a local session. Each session prints `--mb` MB of text then a
sentinel line; a run is timed from `start_all` until every session has completed, and it
counts only if every screen ends on its sentinel. Local and host runs alternate, so the
shared machine's noise hits both alike; compare the ratio, not the absolute figures.

By default the host is a loopback sshd started for the run (tests/sshd_support.py): the
figures show SSH, sshd and the engine without a network.

    python -m bench.host_ingest [--runs N] [--mb N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import anyio

from engine.deck.spec import parse_deck
from engine.engine import open_engine
from engine.states import SessionState

FLOODERS = 8
CHANNELS = 2 * FLOODERS + 1  # a PTY and a control stream per warm terminal, one for signals
SENTINEL = "swarmdeck-host-ingest-end"
LINE = "swarmdeck host ingest: a test shard printing its log as fast as it can 0123456789"


def deck_text(mb: int, host: str | None) -> str:
    size = mb * 1_000_000
    command = f"yes '{LINE}' | head -c {size}; echo; echo {SENTINEL}"
    text = f'name = "host-ingest"\n[pool]\nsize = {FLOODERS}\nwarm = {FLOODERS}\n'
    if host:
        text += host
    for i in range(FLOODERS):
        text += f'\n[[session]]\nname = "flood{i}"\ncommand = "{command}"\n'
        if host:
            text += 'host = "bench"\n'
    return text


def host_table(address: str, identity: Path, known_hosts: Path) -> str:
    return (
        f'\n[[host]]\nname = "bench"\nssh = "{address}"\nidentity = "{identity}"\n'
        f'known_hosts = "{known_hosts}"\nmax_channels = {CHANNELS}\n'
        f"pool = {{ size = {FLOODERS}, warm = {FLOODERS} }}\n"
    )


async def one_run(deck_body: str, workdir: Path, label: str, mb: int) -> tuple[float, float]:
    """(wall s, engine CPU s) for the eight floods, all screens checked."""
    deck = parse_deck(deck_body, workdir / f"{label}.toml")
    run_dir = workdir / f"run-{label}"
    async with open_engine(deck, run_dir) as engine:
        await anyio.sleep(1.0)  # warm terminals (and the host's connection) are made
        cpu0, t0 = time.process_time(), time.perf_counter()
        await engine.start_all()
        with anyio.fail_after(120 + FLOODERS * mb):
            await engine.wait_finished()
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        for name, session in engine.sessions.items():
            if session.state is not SessionState.COMPLETED:
                raise SystemExit(f"{label}: {name} ended {session.state}: {session.reason}")
            if not any(SENTINEL in line for line in session.screen.text()):
                raise SystemExit(f"{label}: {name}'s screen does not end on its sentinel")
    shutil.rmtree(run_dir, ignore_errors=True)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mb", type=int, default=4, help="MB printed by each session")
    args = parser.parse_args()
    from tests.sshd_support import running_sshd  # a bench-only, test-only helper

    with (
        tempfile.TemporaryDirectory() as tmp,
        running_sshd(Path(tmp) / "sshd", [f"MaxSessions {CHANNELS}"]) as sshd,
    ):
        work = Path(tmp)
        host = host_table(sshd.address, sshd.identity, sshd.known_hosts)
        walls: dict[str, list[float]] = {"local": [], "host": []}
        cpus: dict[str, list[float]] = {"local": [], "host": []}
        for _ in range(args.runs):
            for label, body in (("local", deck_text(args.mb, None)), ("host", None)):
                body = body or deck_text(args.mb, host)
                wall, cpu = anyio.run(one_run, body, work, label, args.mb)
                walls[label].append(wall)
                cpus[label].append(cpu)
    total = FLOODERS * args.mb
    print(f"{FLOODERS} sessions x {args.mb} MB through the engine ({args.runs} runs each)")
    rates = {}
    for label in ("local", "host"):
        rates[label] = total / statistics.median(walls[label])
        per_mb = statistics.median(cpus[label]) / total * 1e3
        runs = ", ".join(f"{total / w:.1f}" for w in walls[label])
        print(f"  {label:5s} {rates[label]:6.1f} MB/s  engine CPU {per_mb:5.1f} ms/MB  ({runs})")
    print(f"  host / local: {rates['host'] / rates['local']:.2f}x")
    print(f"load: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
