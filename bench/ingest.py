"""Engine ingest throughput: PTY read + emulation + asciicast recording of a coloured flood.

Why: every byte a session prints goes through the engine's PTY relay process (4 KiB PTY
reads, the asciicast recording, a pipe to the engine) and the engine's reader, one UTF-8
decode and `Screen.feed_text` (query scanner, avt); a flooding `cat` must not be slower
than the tmux the user would otherwise run. Compared side by side in one run:

* raw PTY read loop in Python (no emulation): the ceiling;
* the real engine (`open_engine`, a deck with one `cat corpus` session, fresh and pooled),
  timed from `start_all` until the session has completed and all output was consumed;
* a detached tmux 200x50 pane running the same `cat`, timed until the command completes.

MB/s are corpus bytes (10^6) per second of wall time; the PTY adds a CR per LF on top.
CPU ms/MB (engine process vs tmux server; the relay's beside it) is the figure a shared
machine cannot skew.

    python bench/ingest.py [--size MB] [--reps N] [--quick] [--no-profile] [--probe]
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import os
import pstats
import random
import select
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Literal

import anyio

from engine.deck.spec import parse_deck
from engine.engine import open_engine
from engine.states import SessionState
from engine.terminals.pty import open_pty, spawn_on_pty
from engine.terminals.terminal import base_env

COLS, ROWS = 200, 50
MB = 1_000_000
UNIQUE = 16 * MB  # distinct text generated; longer corpora repeat it (avt caches nothing)
TMUX = ["tmux", "-L", "swarmdeck-bench", "-f", "/dev/null"]
WORDS = [
    *("request", "worker", "cache", "build", "compile", "link", "test", "passed", "failed"),
    *("retry", "upstream", "socket", "handshake", "latency", "queue", "shard", "replica"),
    *("commit", "index", "tensor", "epoch", "batch"),
]
UTF8 = ["café", "naïve", "Ærøskøbing", "Größe", "żółć", "世界", "漢字テスト", "한국어", "→✓✗"]
Kind = Literal["fresh", "pooled"]


# -- corpus -------------------------------------------------------------------------------
def _line(rng: random.Random, n: int) -> str:
    """One line of a realistic mixed flood; the weights favour plain and 16-colour logs."""
    words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 18)))
    roll = rng.random()
    stamp = f"2026-11-23T00:{n // 60000 % 60:02d}:{n // 1000 % 60:02d}.{n % 1000:03d}Z"
    if roll < 0.30:
        return f"{stamp} INFO  worker[{n % 16}] {words} id={n:08x}\n"
    if roll < 0.50:
        level = rng.choice(["\x1b[32mINFO \x1b[0m", "\x1b[33mWARN \x1b[0m", "\x1b[31mERROR\x1b[0m"])
        return f"\x1b[2m{stamp}\x1b[0m {level} \x1b[36m{words}\x1b[0m\n"
    if roll < 0.62:
        parts = [f"\x1b[38;5;{rng.randrange(256)}m{w}" for w in words.split()]
        return " ".join(parts) + "\x1b[0m\n"
    if roll < 0.72:
        r, g, b = rng.randrange(256), rng.randrange(256), rng.randrange(256)
        return f"\x1b[1;38;2;{r};{g};{b}m{words}\x1b[22;48;2;{b};{r};{g}m {n}\x1b[0m\n"
    if roll < 0.80:
        return f"\x1b[1mbold\x1b[0m \x1b[4m{words}\x1b[24m \x1b[1;4;35mboth\x1b[0m\n"
    if roll < 0.88:
        return " ".join(rng.choice(UTF8) for _ in range(rng.randint(3, 12))) + f" {words}\n"
    if roll < 0.96:
        steps = rng.randint(3, 10)
        bar = "".join(
            f"\r\x1b[32m[{'#' * (i * 40 // steps):<40}]\x1b[0m {i * 100 // steps:3d}% {words[:30]}"
            for i in range(steps + 1)
        )
        return bar + "\x1b[K\n"
    moves = rng.choice(["\x1b[2A\x1b[10G", "\x1b[s\x1b[1;1H", "\x1b[3B\x1b[K", "\x1b[5C"])
    return f"{moves}{words}\x1b[u\n"


def write_corpus(path: Path, size: int, seed: int = 20261123) -> int:
    """Deterministic corpus of `size` bytes ending in a sentinel line; returns its size."""
    rng = random.Random(seed)
    chunks: list[bytes] = []
    total = n = 0
    while total < min(size, UNIQUE):
        data = "".join(_line(rng, n + i) for i in range(1000)).encode()
        n += 1000
        chunks.append(data)
        total += len(data)
    block = b"".join(chunks)
    sentinel = f"\x1b[0m\nswarmdeck-ingest-end {size}\n".encode()
    body = size - len(sentinel)
    with path.open("wb") as f:
        written = 0
        while written < body:
            piece = block[: body - written]
            f.write(piece)
            written += len(piece)
        f.write(sentinel)
    return path.stat().st_size


# -- raw PTY ceiling ----------------------------------------------------------------------
def raw_pty(corpus: Path) -> tuple[float, int, float]:
    """A plain poll + os.read(64 KiB) loop; return (seconds, bytes read, mean read size)."""
    master, slave = open_pty(COLS, ROWS)
    proc = spawn_on_pty(["cat", str(corpus)], slave, env=base_env())
    os.close(slave)
    poller = select.poll()
    poller.register(master, select.POLLIN)
    total = reads = 0
    t0 = time.perf_counter()
    try:
        while True:
            poller.poll()
            try:
                while True:
                    data = os.read(master, 65536)
                    if not data:
                        raise EOFError
                    total += len(data)
                    reads += 1
            except BlockingIOError:
                continue
    except (EOFError, OSError):  # EIO: cat exited and closed the slave
        pass
    elapsed = time.perf_counter() - t0
    os.close(master)
    proc.wait()
    return elapsed, total, total / max(reads, 1)


# -- the engine ---------------------------------------------------------------------------
PROBE = 'ready = { log = "^swarmdeck-never-printed$", timeout = "1h" }\n'
"""--probe: the session is a service whose ready line never comes, so every read goes
through the log probe (engine/sessions/probe.py), as a service flooding before it is ready."""


def deck_text(corpus: Path, kind: Kind, probe: bool = False) -> str:
    return (
        'name = "ingest"\n'
        f"[pool]\nsize = 1\nwarm = {1 if kind == 'pooled' else 0}\n"
        f"cols = {COLS}\nrows = {ROWS}\n"
        "[[session]]\n"
        'name = "flood"\n'
        f'command = ["cat", "{corpus}"]\n'
        f'terminal = "{kind}"\n' + (PROBE if probe else "")
    )


async def engine_run(
    corpus: Path, size: int, kind: Kind, workdir: Path, probe: bool = False
) -> tuple[float, float, bool, float]:
    """(wall s, engine CPU s, sentinel seen, PTY relay CPU s) for one `cat` session."""
    deck_path = workdir / f"ingest-{kind}.toml"
    deck = parse_deck(deck_text(corpus, kind, probe), deck_path)
    run_dir = workdir / f"run-{kind}"
    async with open_engine(deck, run_dir) as engine:  # the pooled terminal is warm here
        relay = engine.pool._relay
        relay_cpu0 = _cpu_seconds(relay.pid) if relay else 0.0
        cpu0, t0 = time.process_time(), time.perf_counter()
        await engine.start_all()
        with anyio.fail_after(60 + size / MB):  # slower than 1 MB/s: give up
            await engine.wait_finished()
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        relay_cpu = _cpu_seconds(relay.pid) - relay_cpu0 if relay else 0.0
        session = engine.sessions["flood"]
        ok = session.state is SessionState.COMPLETED
        seen = ok and any("swarmdeck-ingest-end" in line for line in session.screen.text())
    shutil.rmtree(run_dir, ignore_errors=True)  # the recording is ~1.2x the corpus
    return elapsed, cpu, seen, relay_cpu


# (label, function-name fragments); matched in order against pstats' function names.
CATEGORIES = (
    ("avt emulation (Vt.feed_str)", ("feed_str",)),
    ("PTY reads (os.read, kernel copy)", ("posix.read", "read_available")),
    ("recorder (msgspec encode, file write)", ("dumps", "encode", "_event", "write", "output")),
    ("UTF-8 decode (screen + recorder)", ("decode",)),
    ("Screen.feed own (scanner regex loop)", ("feed_text", "_unterminated", "fullmatch")),
    ("event loop, select, callbacks", ("select", "poll", "_run", "run_once", "wait_readable")),
)


def _label(func: str) -> str:
    for name, keys in CATEGORIES:
        if any(key in func for key in keys):
            return name
    return "other engine glue"


def profile_split(stats: pstats.Stats) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """Own CPU time (tottime) grouped by what it does, and the top functions themselves.

    The scanner's regex runs inside `for match in finditer(...)`, whose iteration cProfile
    does not see as a call, so it is charged to Screen.feed's own time.
    """
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, object]]
    raw = stats.stats  # type: ignore[attr-defined]
    totals: dict[str, float] = {name: 0.0 for name, _ in CATEGORIES}
    totals["other engine glue"] = 0.0
    funcs: list[tuple[str, float]] = []
    for (file, line, func), (_cc, _nc, tt, _ct, _callers) in raw.items():
        where = f"{Path(file).name}:{line}({func})" if line else func
        totals[_label(repr(func) if func == "feed" else where)] += tt
        funcs.append((where, tt))
    funcs.sort(key=lambda item: -item[1])
    return list(totals.items()), funcs[:8]


def profiled_run(
    corpus: Path, size: int, workdir: Path
) -> tuple[list[tuple[str, float]], list[tuple[str, float]], float]:
    profiler = cProfile.Profile()
    profiler.enable()
    elapsed, _, _, _ = anyio.run(engine_run, corpus, size, "fresh", workdir)
    profiler.disable()
    split, top = profile_split(pstats.Stats(profiler))
    return split, top, elapsed


# -- tmux ---------------------------------------------------------------------------------
def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process from /proc (the tmux server is not our child)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tmux_run(corpus: Path) -> tuple[float, float, bool]:
    """Time a detached 200x50 pane's `cat`; the pane waits for 'go' so start-up is excluded.

    Returns (wall s, tmux server CPU s, sentinel seen in the pane).
    """
    sock = " ".join(TMUX)
    script = f"{sock} wait-for go; cat {corpus}; {sock} wait-for -S done; sleep 60"
    subprocess.run(
        [*TMUX, "new-session", "-d", "-x", str(COLS), "-y", str(ROWS), "-s", "ingest", script],
        check=True,
    )
    try:
        server = int(
            subprocess.run(
                [*TMUX, "display-message", "-p", "#{pid}"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        cpu0, t0 = _cpu_seconds(server), time.perf_counter()
        subprocess.run([*TMUX, "wait-for", "-S", "go"], check=True)
        subprocess.run([*TMUX, "wait-for", "done"], check=True)
        elapsed, cpu = time.perf_counter() - t0, _cpu_seconds(server) - cpu0
        pane = subprocess.run(
            [*TMUX, "capture-pane", "-p", "-t", "ingest"], capture_output=True, text=True
        ).stdout
    finally:
        subprocess.run([*TMUX, "kill-server"], check=False, capture_output=True)
    return elapsed, cpu, "swarmdeck-ingest-end" in pane


# -- main ---------------------------------------------------------------------------------
def rate(size: int, seconds: float) -> float:
    return size / MB / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--size", type=int, default=200, help="corpus MB (default 200)")
    parser.add_argument("--quick", action="store_true", help="a 20 MB corpus")
    parser.add_argument("--reps", type=int, default=3, help="interleaved runs (default 3)")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile run")
    parser.add_argument("--probe", action="store_true", help="a ready probe that never matches")
    args = parser.parse_args()
    size = (20 if args.quick else args.size) * MB
    if shutil.which("tmux") is None:
        raise SystemExit("tmux is not installed (apt-get install -y tmux)")
    with tempfile.TemporaryDirectory(prefix="swarmdeck-bench-ingest-") as tmp:
        workdir = Path(tmp)
        corpus = workdir / "corpus.txt"
        t0 = time.perf_counter()
        size = write_corpus(corpus, size)
        data = corpus.read_bytes()
        esc, lines, crs = data.count(b"\x1b"), data.count(b"\n"), data.count(b"\r")
        print(
            f"swarmdeck ingest bench: {size / MB:.0f} MB corpus ({esc:,} ESC, "
            f"{lines:,} lines, {crs:,} CR rewrites), "
            f"{COLS}x{ROWS}, {os.cpu_count()} CPUs, load average "
            f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}, {time.ctime()}; "
            f"generated in {time.perf_counter() - t0:.1f} s"
        )
        del data
        results: dict[str, list[float]] = {"raw": [], "fresh": [], "pooled": [], "tmux": []}
        cpu: dict[str, list[float]] = {"fresh": [], "pooled": [], "tmux": []}
        relay_cpu: dict[str, list[float]] = {"fresh": [], "pooled": []}
        checks: dict[str, bool] = {"fresh": True, "pooled": True, "tmux": True}
        raw_bytes, raw_mean = 0, 0.0
        for _ in range(args.reps):  # interleaved, so a noisy spell hits every path alike
            raw_s, raw_bytes, raw_mean = raw_pty(corpus)
            results["raw"].append(raw_s)
            for kind in ("fresh", "pooled"):
                measured = functools.partial(engine_run, corpus, size, kind, workdir, args.probe)
                secs, cpu_s, ok, relay_s = anyio.run(measured)
                results[kind].append(secs)
                cpu[kind].append(cpu_s)
                relay_cpu[kind].append(relay_s)
                checks[kind] &= ok
            tmux_s, tmux_cpu, tmux_ok = tmux_run(corpus)
            results["tmux"].append(tmux_s)
            cpu["tmux"].append(tmux_cpu)
            checks["tmux"] &= tmux_ok
        med = {key: statistics.median(values) for key, values in results.items()}
        print(f"\n  median of {args.reps} interleaved runs; MB/s of every run in brackets")
        print(f"  {'path':<30}{'seconds':>8}{'MB/s':>7}  {'runs MB/s':<22}{'CPU ms/MB':>11}  check")
        labels = {
            "raw": "raw PTY read loop (ceiling)",
            "fresh": "engine, fresh terminal",
            "pooled": "engine, pooled terminal",
            "tmux": "tmux 3.3 pane 200x50",
        }
        for key, label in labels.items():
            runs = " ".join(f"{rate(size, secs):.1f}" for secs in results[key])
            if key == "raw":
                note = f"mean read {raw_mean / 1024:.1f} KiB, {raw_bytes / MB:.0f} MB"
                cpu_col = ""
            else:
                note = "end seen" if checks[key] else "END MISSING"
                if key in relay_cpu:
                    relay_ms = statistics.median(relay_cpu[key]) * 1e3 / (size / MB)
                    note += f"; + PTY relay {relay_ms:.1f} ms/MB"
                cpu_col = f"{statistics.median(cpu[key]) * 1e3 / (size / MB):.1f}"
            print(
                f"  {label:<30}{med[key]:8.2f}{rate(size, med[key]):7.1f}  [{runs}]".ljust(69)
                + f"{cpu_col:>11}  {note}"
            )
        for kind in ("fresh", "pooled"):
            pairs = [t / e for t, e in zip(results["tmux"], results[kind], strict=True)]
            ratio = med["tmux"] / med[kind]
            print(
                f"\n  engine {kind} / tmux: {ratio:.2f}x (per run "
                + " ".join(f"{r:.2f}" for r in pairs)
                + f"; target >= 1.5x: {'met' if ratio >= 1.5 else 'MISSED'}); "
                f"of the raw ceiling: {med['raw'] / med[kind]:.2f}; CPU per MB vs tmux's: "
                f"{statistics.median(cpu[kind]) / statistics.median(cpu['tmux']):.2f}x",
                end="",
            )
        print(
            "\n  (CPU ms/MB: the engine process's CPU time, or the tmux server's, per corpus MB;"
            "\n   the engine's PTY relay process (reads + recording) is noted beside it; `cat`"
            "\n   and the kernel's tty work are in neither. It is the load-proof figure.)"
        )
        if not args.no_profile:
            sample = workdir / "sample.txt"
            sample_size = write_corpus(sample, min(size, 20 * MB))
            split, top, elapsed = profiled_run(sample, sample_size, workdir)
            total = sum(secs for _, secs in split)
            print(
                f"\n  engine CPU split (cProfile, fresh, {min(size, 20 * MB) / MB:.0f} MB, "
                f"{elapsed:.1f} s under the profiler; own time per category):"
            )
            for name, secs in split:
                print(f"    {name:<40}{secs:7.2f} s {100 * secs / total:5.1f} %")
            print("  top functions by own time:")
            for where, secs in top:
                print(f"    {where[:64]:<64}{secs:7.3f} s")


if __name__ == "__main__":
    main()
