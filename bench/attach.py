"""Serving figures: attach time, engine CPU with attached clients, per-client bandwidth.

Runs a real `swarmdeck serve` process (the engine) and measures from clients in this
process. `python -m bench.attach` prints the figures docs/performance.md quotes.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

from engine.remote.protocol import VERSION, LineSocket, encode
from engine.remote.remote_engine import RemoteEngine, open_remote_engine

ROOT = Path(__file__).resolve().parent.parent
TICKER = """
[[session]]
name = "tick-{n}"
command = '''i=0; while :; do i=$((i+1)); printf '\\033[3{c}m%06d\\033[0m %s\\n' \\
  $i "$(date +%T.%N)"; sleep 0.05; done'''
"""
FLOOD = """
[[session]]
name = "flood"
command = "while read go; do yes \\"$(printf '%0150d' 0)\\" | head -n 300000; echo flood-done; done"
"""


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _raw(path: Path) -> tuple[LineSocket, object]:
    sock = LineSocket(await anyio.connect_unix(path))
    await sock.send(encode({"op": "hello", "req": 0, "protocol": VERSION, "role": "viewer"}))
    return sock, sock.lines(1 << 26)


async def _count(frames: object, seconds: float) -> int:
    total = 0
    with anyio.move_on_after(seconds):
        async for line in frames:  # type: ignore[attr-defined]
            total += len(line) + 1
    return total


def _serve(deck: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    run_dir = deck.parent / "run"
    command = [sys.executable, "-m", "tui.cli", "serve", str(deck), "--run-dir", str(run_dir)]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="sdb-") as tmp:
        deck = Path(tmp) / "bench.toml"
        body = "".join(TICKER.format(n=n, c=n % 7 + 1) for n in range(15)) + FLOOD
        deck.write_text(f"[pool]\nsize = 16\nwarm = 16\n{body}")
        env = {**os.environ, "SWARMDECK_RUNTIME_DIR": tmp}
        server = _serve(deck, env)
        try:
            assert server.stdout is not None
            path = Path(server.stdout.readline().rsplit(" on ", 1)[1].strip())
            await anyio.sleep(2)
            await _measure(path, server.pid)
        finally:
            server.terminate()
            server.wait(60)


async def _first_paint(path: Path) -> float:
    """Connect, build the control room (headless Textual, no terminal write), and stop the
    clock when every visible pane has rendered each of its rows once: the first full paint."""
    from tui.app import ControlRoom
    from tui.widgets.terminal_pane import TerminalPane

    start = time.perf_counter()
    async with open_remote_engine(path, "viewer") as remote:
        app = ControlRoom(remote, read_only=True, attached=True)
        async with app.run_test(size=(200, 55)) as pilot:
            while True:
                panes = [p for p in app.query(TerminalPane) if p.display and p.size.height]
                if panes and all(len(p._strips) >= p.size.height for p in panes):
                    return time.perf_counter() - start
                await pilot.pause(0.002)


async def _measure(path: Path, pid: int) -> None:
    times = []
    for _ in range(20):
        start = time.perf_counter()
        async with open_remote_engine(path, "viewer") as remote:
            times.append(time.perf_counter() - start)
            sessions = len(remote.list_sessions())
    median, worst = statistics.median(times) * 1e3, max(times) * 1e3
    print(
        f"attach to full snapshot, {sessions} sessions: median {median:.1f} ms, max {worst:.1f} ms"
    )
    paints = [await _first_paint(path) for _ in range(5)]
    median, worst = statistics.median(paints) * 1e3, max(paints) * 1e3
    print(
        f"attach to first full paint (control room 200x55, {sessions} sessions): "
        f"median {median:.1f} ms, max {worst:.1f} ms"
    )
    for clients in (0, 4):
        cpu = _cpu(pid)
        socks = []
        async with anyio.create_task_group() as tg:
            for _ in range(clients):
                sock, frames = await _raw(path)
                socks.append(sock)
                tg.start_soon(_count, frames, 5.0)
            await anyio.sleep(5.0)
        for sock in socks:
            await sock.stream.aclose()
        usage = (_cpu(pid) - cpu) / 5 * 100
        print(f"engine CPU, 15 ticking sessions, {clients} clients: {usage:.0f}% of a core")
    async with open_remote_engine(path) as operator:
        for stalled in (False, True):
            await _flood(path, pid, operator, stalled)


async def _flood(path: Path, pid: int, operator: RemoteEngine, stalled: bool) -> None:
    """A fast client reads throughout; the other reads too, or stalls 5 s then drains."""
    counts = {"fast": 0, "other": 0}
    sockets = []

    async def read(name: str, delay: float) -> None:
        sock, frames = await _raw(path)
        sockets.append(sock)
        await anyio.sleep(delay)
        async for line in frames:  # type: ignore[attr-defined]
            counts[name] += len(line) + 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(read, "fast", 0.0)
        tg.start_soon(read, "other", 5.0 if stalled else 0.0)
        await anyio.sleep(0.5)
        cpu, start = _cpu(pid), time.perf_counter()
        await operator.send_input("flood", b"\r")
        await anyio.sleep(5.0)
        elapsed, fast, other = time.perf_counter() - start, counts["fast"], counts["other"]
        usage = (_cpu(pid) - cpu) / elapsed * 100
        await anyio.sleep(3.0)
        tg.cancel_scope.cancel()
    mode = "beside a stalled client" if stalled else "beside a second reading client"
    print(
        f"flood 5 s, fast client {mode}: {fast / elapsed / 1e6:.2f} MB/s, engine CPU {usage:.0f}%"
    )
    later = counts["other"] / 1e6
    print(f"  other client: {other / 1e6:.2f} MB in those 5 s, {later:.2f} MB after 3 s more")
    for sock in sockets:
        await sock.stream.aclose()


if __name__ == "__main__":
    anyio.run(main)
