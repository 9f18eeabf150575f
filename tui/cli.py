"""The `swarmdeck` command. Imports stay inside each sub-command so that light commands
(validate, and `swarmdeck bus`, which runs inside every session) start fast."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.deck.spec import DeckSpec


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swarmdeck", description="A terminal control room for many concurrent sessions."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a deck: attach to its engine, started if needed")
    run.add_argument("deck", type=Path, help="deck file (TOML)")
    run.add_argument(
        "--headless", action="store_true", help="no control room: live table and summary"
    )
    run.add_argument("--run-dir", type=Path, help="where recordings and summary.json go")

    validate = sub.add_parser("validate", help="check a deck file and list every problem")
    validate.add_argument("deck", type=Path)
    from tui.service import add_commands  # argparse and pathlib only: cheap

    add_commands(sub)
    return parser


def _validate(path: Path) -> int:
    from engine.deck.spec import load_deck
    from engine.errors import DeckError

    try:
        deck = load_deck(path)
    except DeckError as exc:
        print(f"{exc.path}: invalid deck ({len(exc.problems)} problems)", file=sys.stderr)
        for problem in exc.problems:
            print(f"{exc.path}: {problem}", file=sys.stderr)
        return 2
    print(f"{path}: OK ({len(deck.sessions)} sessions, pool of {deck.pool.size})")
    return 0


def load_or_report(path: Path) -> DeckSpec | None:
    """The deck, or None after printing every problem (file: field: expectation)."""
    from engine.deck.spec import load_deck
    from engine.errors import DeckError

    try:
        return load_deck(path)
    except DeckError as exc:
        for problem in exc.problems:
            print(f"{exc.path}: {problem}", file=sys.stderr)
        return None


def _run(args: argparse.Namespace) -> int:
    """Headless in-process, or the tmux model: attach to the engine serving the deck,
    starting one in the background first if none is running."""
    from engine.errors import SwarmdeckError

    deck = load_or_report(args.deck)
    if deck is None:
        return 2
    if args.headless:
        from tui.headless import run_headless

        return run_headless(deck, args.run_dir)
    from tui.attach import run_attached
    from tui.daemon import LOG_NAME, find_or_start

    try:
        entry, started = find_or_start(deck, args.run_dir)
    except SwarmdeckError as exc:
        print(f"swarmdeck run: {exc}", file=sys.stderr)
        return 1
    if started:
        print(f"swarmdeck: serving {entry.run_id} in the background ({entry.run_dir}/{LOG_NAME})")
    return run_attached(entry, "operator")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "bus":  # runs inside every session: stdlib-only, fast to start
        from engine.bus.cli import main as bus_main

        return bus_main(argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "validate":
        return _validate(args.deck)
    if args.command == "run":
        return _run(args)
    from tui.service import COMMANDS, run_command  # every other command is a service one

    if args.command in COMMANDS:
        return run_command(args)
    return 2  # pragma: no cover (argparse enforces the choices)


if __name__ == "__main__":
    sys.exit(main())
