#!/usr/bin/env python3
"""A pretend build (~20 s) that shows off colours: 16-colour tags, a 256-colour
banner and a progress bar redrawn in place. Standard library only."""

from __future__ import annotations

import os
import random
import sys
import time

RESET, BOLD, DIM = "\x1b[0m", "\x1b[1m", "\x1b[2m"
GREEN, YELLOW, CYAN, MAGENTA = "\x1b[32m", "\x1b[33m", "\x1b[36m", "\x1b[35m"
MODULES = [
    "engine/pool", "engine/session", "engine/screen", "engine/bus", "engine/journal",
    "engine/metrics", "engine/recorder", "tui/app", "tui/pane", "tui/sessions",
    "tui/pool_panel", "tui/bus_panel", "themes/dark", "themes/light", "docs/protocol",
]  # fmt: skip


def fg256(code: int) -> str:
    return f"\x1b[38;5;{code}m"


def banner(text: str) -> None:
    """The title in a 256-colour rainbow, one colour per letter."""
    ramp = [196, 202, 208, 214, 220, 226, 190, 154, 118, 82, 46, 47, 48, 49, 51, 45, 39, 33]
    letters = (fg256(ramp[i % len(ramp)]) + ch for i, ch in enumerate(text))
    print(BOLD + "".join(letters) + RESET)


def progress(done: int, total: int, width: int = 40) -> None:
    """One line, redrawn with a carriage return; the bar fades from blue to cyan."""
    filled = width * done // total
    cells = "".join(fg256(27 + 6 * (i * 4 // width)) + "█" for i in range(filled))
    rest = DIM + "·" * (width - filled) + RESET
    sys.stdout.write(f"\r  {cells}{rest} {done * 100 // total:3d}% ({done}/{total})")
    sys.stdout.flush()


def compile_module(name: str, rng: random.Random) -> None:
    time.sleep(rng.uniform(0.7, 1.4))
    tag = f"{GREEN}[  OK  ]{RESET}"
    if rng.random() < 0.2:
        tag = f"{YELLOW}[ WARN ]{RESET}"
        print(
            f"\r\x1b[K{tag} {name}: {YELLOW}unused import 'os' (line {rng.randint(3, 90)}){RESET}"
        )
    else:
        print(f"\r\x1b[K{tag} {CYAN}{name}{RESET} {DIM}{rng.randint(80, 900)} ms{RESET}")


def main() -> int:
    rng = random.Random(7)
    banner("swarmdeck demo build")
    flavour = os.environ.get("BUILD_FLAVOUR", "debug")
    print(f"{DIM}{flavour} build, python {sys.version.split()[0]}, {len(MODULES)} modules{RESET}")
    for done, name in enumerate(MODULES, start=1):
        compile_module(name, rng)
        progress(done, len(MODULES))
    print(f"\n{MAGENTA}linking{RESET} ", end="", flush=True)
    for _ in range(12):
        time.sleep(0.25)
        print(fg256(rng.choice([201, 207, 213, 219])) + "●", end="", flush=True)
    print(f"{RESET}\n{BOLD}{GREEN}✔ build finished{RESET} — 0 errors, some warnings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
