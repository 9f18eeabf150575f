"""The `swarmdeck` command. Imports stay inside each sub-command so that light commands
(validate, and later `swarmdeck bus`, which runs inside every session) start fast."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swarmdeck", description="A terminal control room for many concurrent sessions."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a deck")
    run.add_argument("deck", type=Path, help="deck file (TOML)")
    run.add_argument(
        "--headless", action="store_true", help="no control room: live table and summary"
    )
    run.add_argument("--run-dir", type=Path, help="where recordings and summary.json go")

    validate = sub.add_parser("validate", help="check a deck file and list every problem")
    validate.add_argument("deck", type=Path)
    return parser


def _validate(path: Path) -> int:
    from engine.errors import DeckError
    from engine.spec import load_deck

    try:
        deck = load_deck(path)
    except DeckError as exc:
        print(f"{exc.path}: invalid deck ({len(exc.problems)} problems)", file=sys.stderr)
        for problem in exc.problems:
            print(f"{exc.path}: {problem}", file=sys.stderr)
        return 2
    print(f"{path}: OK ({len(deck.sessions)} sessions, pool of {deck.pool.size})")
    return 0


def _run(args: argparse.Namespace) -> int:
    from engine.errors import DeckError
    from engine.spec import load_deck

    try:
        deck = load_deck(args.deck)
    except DeckError as exc:
        for problem in exc.problems:
            print(f"{exc.path}: {problem}", file=sys.stderr)
        return 2
    if not args.headless:
        print("swarmdeck: the control room is not built yet; running headless", file=sys.stderr)
    from tui.headless import run_headless

    return run_headless(deck, args.run_dir)


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
    return 2  # pragma: no cover (argparse enforces the choices)


if __name__ == "__main__":
    sys.exit(main())
