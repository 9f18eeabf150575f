"""What finding bells costs the screen: `Screen.feed` CPU ms/MB, and the share of it the
bell check (`rings`: complete OSC strings cut out, a BEL left over rings) takes.

Why: a BEL that ends an OSC string rings nothing, and much real output is full of them:
`ls --hyperlink`, compilers' and test runners' OSC 8 links, a title set at every prompt
(docs/attention.md). Text with no BEL skips the check; the worst case is a BEL-ended link
on every line. Corpora (64 KiB feeds, like the engine's reads):

* sgr: coloured log lines, no BEL (a build log);
* links: the same with two BEL-ended OSC 8 links per line (`ls --hyperlink` in colour);
* titles: one OSC 0 title (BEL-ended) per 10 lines (prompts).

    python bench/bells.py [--lines N] [--reps N]
"""

from __future__ import annotations

import argparse
import random
import time

from engine.screen import Screen
from engine.screen_scan import rings

CHUNK = 65536


def corpora(lines: int) -> dict[str, bytes]:
    rng = random.Random(20261204)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "build", "ok", "src/engine.py"]
    plain = [
        f"\x1b[{rng.randint(31, 37)}m{i:06d}\x1b[0m " + " ".join(rng.choices(words, k=12)) + "\r\n"
        for i in range(lines)
    ]
    links = [f"\x1b]8;;file:///s/{i}\x07f{i}\x1b]8;;\x07 {line}" for i, line in enumerate(plain)]
    titles = [f"\x1b]0;step {i}\x07{line}" if i % 10 == 0 else line for i, line in enumerate(plain)]
    return {name: "".join(text).encode() for name, text in
            (("sgr", plain), ("links", links), ("titles", titles))}  # fmt: skip


def feed_ms_per_mb(data: bytes, reps: int) -> float:
    """Best of `reps`: CPU time (a shared machine skews wall time more)."""
    best = float("inf")
    for _ in range(reps):
        screen = Screen(200, 50, 5000)
        start = time.process_time()
        for offset in range(0, len(data), CHUNK):
            screen.feed(data[offset : offset + CHUNK])
        best = min(best, time.process_time() - start)
    return best / (len(data) / 1e6) * 1000


def rings_ms_per_mb(data: bytes, reps: int) -> float:
    text = data.decode()
    chunks = [text[o : o + CHUNK] for o in range(0, len(text), CHUNK)]
    best = float("inf")
    for _ in range(reps):
        start = time.process_time()
        for chunk in chunks:
            if "\x07" in chunk:
                rings(chunk)
        best = min(best, time.process_time() - start)
    return best / (len(data) / 1e6) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--lines", type=int, default=40_000, help="lines per corpus")
    parser.add_argument("--reps", type=int, default=7, help="runs per figure (best kept)")
    args = parser.parse_args()
    print(f"{'corpus':<8} {'MB':>5} {'feed ms/MB':>11} {'bell check':>11} {'share':>6}")
    for name, data in corpora(args.lines).items():
        feed = feed_ms_per_mb(data, args.reps)
        bell = rings_ms_per_mb(data, args.reps)
        print(f"{name:<8} {len(data) / 1e6:>5.1f} {feed:>11.1f} {bell:>11.2f} {bell / feed:>6.1%}")


if __name__ == "__main__":
    main()
