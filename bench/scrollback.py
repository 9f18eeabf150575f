"""Scrollback memory and history reads: all of it in avt (before) vs the compact store (after).

Why: the engine holds every session's screen and its 5,000-row history; in avt a coloured
200-column row costs ~24 bytes a cell (~24 MB a session), which 1,000 sessions cannot afford.
Each path runs in its own child process (a clean RSS), side by side in one run:

* `before`: `Screen(..., avt_scrollback=None)`, the whole history in avt, as it was;
* `after`: the engine's `Screen` (the newest rows in avt, older ones in the store).

Each child feeds N sessions' screens (200x50, 5,000 rows of history) a corpus in 4 KiB
chunks, as the engine's reader does, calling `compact()` after each session's flood (the
engine does once a second), then measures:

* memory per session: the RSS delta over N sessions (after `malloc_trim`, so memory glibc
  kept from the flood is not counted; the untrimmed figure is beside it), and the Python
  heap per session (tracemalloc, in a second child over at most 10 sessions: tracing
  slows every allocation);
* feed time per MB and the compaction's time per session (CPU time, as every time here);
* history reads: the whole history (`scrollback_lines(0, size)`, what the room's history
  page, `capture --history` and a remote room fetch) and a 50-row window at a random place.

Corpora: `full` is every row 200 columns of 256-colour words on coloured backgrounds (the
worst case), `mixed` is bench/ingest.py's realistic flood (logs, colours, UTF-8, CR bars).

    python bench/scrollback.py [--sessions N] [--lines N] [--corpus full|mixed|both]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

from bench.ingest import _line
from engine.screen import Screen
from engine.scrollback_store import BLOCK_LINES

COLS, ROWS, SCROLLBACK = 200, 50, 5000
CHUNK = 4096
MB = 1_000_000
WORDS = ["request", "worker", "cache", "build", "compile", "passed", "failed", "shard", "日本"]


def _full_line(rng: random.Random, n: int) -> str:
    """One row of exactly COLS columns, every word in its own 256-colour pen."""
    parts, width = [f"\x1b[1;38;5;{n % 256}m{n:08d}"], 8
    while width < COLS:
        word = rng.choice(WORDS)
        cells = len(word) + (len(word) if word == "日本" else 0) + 1
        if width + cells > COLS:
            word, cells = "." * (COLS - width - 1), COLS - width
        fg, bg = rng.randrange(256), rng.randrange(16)
        parts.append(f"\x1b[0;38;5;{fg};48;5;{bg}m {word}")
        width += cells
    return "".join(parts) + "\x1b[0m\r\n"


def corpus(kind: str, lines: int) -> list[str]:
    rng = random.Random(20261204)
    if kind == "full":
        text = "".join(_full_line(rng, n) for n in range(lines))
    else:
        text = "".join(_line(rng, n) for n in range(lines)).replace("\n", "\r\n")
    return [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)]


def _cpu() -> float:
    """This process's CPU seconds: on a shared machine, fairer than the wall clock."""
    return time.process_time()


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _trim() -> None:
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)


def _compact(screen: Screen) -> None:
    """What the engine's frames do after a flood: the first finds lines dropped unconverted
    and waits; the next ones convert a block at a time."""
    screen.compact(BLOCK_LINES)
    while screen.compact(BLOCK_LINES):
        pass


def _screen(path: str) -> Screen:
    return Screen(COLS, ROWS, SCROLLBACK, avt_scrollback=None if path == "before" else 100)


def child(path: str, kind: str, sessions: int, lines: int, traced: bool) -> dict[str, float]:
    chunks = corpus(kind, lines)
    size = sum(len(c.encode()) for c in chunks)
    _trim()
    if traced:
        tracemalloc.start()
    rss0 = _rss()
    screens, feed, compact = [], 0.0, 0.0
    for _ in range(sessions):
        screen = _screen(path)
        started = _cpu()
        for chunk in chunks:
            screen.feed_text(chunk)
        feed += _cpu() - started
        started = _cpu()
        _compact(screen)
        compact += _cpu() - started
        screens.append(screen)
    if traced:
        heap = tracemalloc.get_traced_memory()[0]
        return {"heap": heap / sessions}
    untrimmed = _rss() - rss0
    _trim()
    result = {
        "rss": (_rss() - rss0) / sessions,
        "untrimmed": untrimmed / sessions,
        "feed_ms_mb": feed * 1e3 / (size * sessions / MB),
        "compact_ms": compact * 1e3 / sessions,
        "history": screens[0].scrollback_size(),
    }
    result.update(_reads(screens))
    return result


def _reads(screens: list[Screen]) -> dict[str, float]:
    rng = random.Random(5)
    whole, window = [], []
    for screen in screens[:10]:
        size = screen.scrollback_size()
        started = _cpu()
        screen.scrollback_lines(0, size)
        whole.append(_cpu() - started)
        for _ in range(20):
            start = rng.randrange(size - 50)
            started = _cpu()
            screen.scrollback_lines(start, 50)
            window.append(_cpu() - started)
    return {
        "whole_ms": statistics.median(whole) * 1e3,
        "window_ms": statistics.median(window) * 1e3,
    }


def _run_child(*args: str) -> dict[str, float]:
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-m", "bench.scrollback", "--child", *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--lines", type=int, default=6000, help="rows each session prints")
    parser.add_argument("--corpus", choices=["full", "mixed", "both"], default="both")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        path, kind, sessions, lines, traced = args.child
        print(json.dumps(child(path, kind, int(sessions), int(lines), traced == "1")))
        return
    print(
        f"swarmdeck scrollback bench: {args.sessions} sessions, {COLS}x{ROWS}, {SCROLLBACK} rows"
        f" of history, {args.lines} rows printed each; load average"
        f" {', '.join(f'{x:.1f}' for x in os.getloadavg())}, {time.ctime()}"
    )
    head = "  corpus path    MB/session  untrimmed  py heap MB  feed ms/MB  compact ms"
    print(head + "  whole read ms  50-row read ms")
    for kind in ("full", "mixed") if args.corpus == "both" else (args.corpus,):
        for path in ("before", "after"):
            r = _run_child(path, kind, str(args.sessions), str(args.lines), "0")
            traced = (path, kind, str(min(args.sessions, 10)), str(args.lines), "1")
            heap = _run_child(*traced)["heap"]
            print(
                f"  {kind:<6} {path:<7} {r['rss'] / 2**20:10.2f} {r['untrimmed'] / 2**20:10.2f}"
                f" {heap / 2**20:11.2f} {r['feed_ms_mb']:11.1f} {r['compact_ms']:11.1f}"
                f" {r['whole_ms']:14.1f} {r['window_ms']:15.3f}   ({r['history']:.0f} rows)"
            )


if __name__ == "__main__":
    main()
