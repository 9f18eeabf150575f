"""What one history prefetch costs the serving engine's loop: protocol 6's whole `history`
against protocol 7's `history_since` (a new client's first fetch, then the steady state).

Why: an attached room prefetches the watched session's history every second; with a
5,000-line coloured history the whole copy held the engine's loop for tens to hundreds
of ms, and everything else waited (the echo of the session being typed into included).

A real engine (in this process, so its loop can be watched) serves a session that printed
1.5 MB of bench/ingest.py's coloured corpus (a full 5,000-line history at 200x50, as
`bench/keys.py --history`). A raw client on the control socket sends each request
`--repeat` times; a ticker task in the engine's loop records the longest time the loop
was held (CPU time of the loop's thread between two of its turns: wall-clock gaps on a
shared machine are mostly the OS running someone else) while the reply was made. Figures
per request: reply time, longest hold, CPU time of this process (the engine's work; the
client here only reads bytes), longest garbage collection meanwhile, reply size.

    python -m bench.history [--repeat N]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from bench.ingest import write_corpus
from engine.deck.spec import parse_deck
from engine.engine import open_engine
from engine.remote.control_server import open_control_server
from engine.remote.protocol import VERSION, LineSocket, encode

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from engine.engine import Engine

DECK = """
[pool]
size = 1
warm = 1

[[session]]
name = "hist"
command = "cat {corpus} | head -c 1500000; exec cat"
cols = 200
rows = 50
"""


class Ticker:
    """The longest turn of the loop (CPU time) while `watching`, and the longest
    garbage collection meanwhile (the served engine runs Python's default GC)."""

    def __init__(self) -> None:
        self.longest = self.collected = self._began = 0.0
        self.watching = False
        gc.callbacks.append(self._gc)

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        elif self.watching:
            self.collected = max(self.collected, time.perf_counter() - self._began)

    async def run(self) -> None:
        """Gaps in the loop thread's CPU time, not wall time: on a loaded machine the OS
        takes the CPU away for whole time slices, which no change here could help."""
        last = time.thread_time()
        while True:
            await anyio.sleep(0.0005)
            now = time.thread_time()
            if self.watching:
                self.longest = max(self.longest, now - last)
            last = now


async def _settled(engine: Engine) -> None:
    screen = engine.sessions["hist"].screen
    with anyio.fail_after(120):
        while True:
            size, revision = screen.scrollback_size(), screen.revision
            await anyio.sleep(1.0)
            if size >= 4900 and screen.revision == revision:
                return


async def _request(
    sock: LineSocket, frames: AsyncGenerator[bytes, None], ticker: Ticker, fields: dict[str, Any]
) -> tuple[float, float, float, float, int]:
    """(reply ms, longest hold ms, CPU ms, longest GC ms, reply bytes) of one request."""
    ticker.longest, ticker.collected, ticker.watching = 0.0, 0.0, True
    wall, cpu = time.perf_counter(), time.process_time()
    await sock.send(encode({"req": 7, "session": "hist", **fields}))
    async for line in frames:
        if line.startswith(b'{"re":7'):
            break
    ticker.watching = False
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall * 1e3, ticker.longest * 1e3, cpu * 1e3, ticker.collected * 1e3, len(line)


async def main(repeat: int) -> None:
    print(
        f"swarmdeck history bench: one prefetch of a 5,000-line coloured history at 200x50, "
        f"{repeat} times each, {os.cpu_count()} CPUs, load average "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}, {time.ctime()}"
    )
    with tempfile.TemporaryDirectory(prefix="sd-hist-") as name:
        tmp = Path(name)
        write_corpus(tmp / "corpus.txt", 3_000_000)
        text = DECK.format(corpus=tmp / "corpus.txt")
        (tmp / "deck.toml").write_text(text)
        deck = parse_deck(text, tmp / "deck.toml")
        async with (
            open_engine(deck, tmp / "run") as engine,
            open_control_server(engine, tmp / "ctl.sock") as server,
            anyio.create_task_group() as tg,
        ):
            await engine.start_all()
            await _settled(engine)
            ticker = Ticker()
            tg.start_soon(ticker.run)
            sock = LineSocket(await anyio.connect_unix(server.socket_path))
            await sock.send(encode({"op": "hello", "req": 0, "protocol": VERSION}))
            frames = sock.lines(1 << 26)
            await anext(frames)
            end = engine.history_read("hist", 0, 0).end
            arms: dict[str, dict[str, Any]] = {
                "history (v6: all of it)": {"op": "history"},
                "history_since 0 (new client)": {"op": "history_since", "start": 0},
                "history_since end-64 (64 new)": {"op": "history_since", "start": end - 64},
                "history_since end (none new)": {"op": "history_since", "start": end},
            }
            heads = ("reply ms", "longest hold ms", "CPU ms", "longest GC ms")
            print(f"  {'request':<32}" + "".join(f"{h:>17}" for h in heads) + f"{'KB':>7}")
            for label, fields in arms.items():
                runs = [await _request(sock, frames, ticker, fields) for _ in range(repeat)]
                cells = ""
                for column in range(len(heads)):
                    values = [run[column] for run in runs]
                    cells += f"{f'{statistics.median(values):.1f} ({max(values):.0f})':>17}"
                print(f"  {label:<32}{cells}{runs[-1][-1] / 1024:>7.0f}")
            print("  median (max) of the runs")
            await frames.aclose()
            await sock.stream.aclose()
            tg.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--repeat", type=int, default=10)
    anyio.run(main, parser.parse_args().repeat)
