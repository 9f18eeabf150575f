"""The `swarmdeck` command. Imports stay inside each sub-command so that light commands
(validate, and `swarmdeck bus`, which runs inside every session) start fast; nothing here
imports Textual: only `tui.attach` (the room) does, and only when a room is opened."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse


NO_TERMINAL = (
    "swarmdeck run: the control room needs a terminal on stdin and stdout; nothing was "
    "started.\n  swarmdeck run --headless {deck}   run it here, printing plain lines\n"
    "  swarmdeck serve {deck}              serve it for `swarmdeck attach` and scripts"
)


def _run(args: argparse.Namespace) -> int:
    """Headless in-process, or the tmux model: attach to the engine serving the deck,
    starting one in the background first if none is running."""
    from engine import SwarmdeckError
    from tui.cli.decks import load_or_report, resolve_or_report
    from tui.cli.settings import room_config

    found = resolve_or_report("run", args.deck, args.sessions)
    if found is None:
        return 2
    args.deck, args.sessions = found
    deck = load_or_report(args.deck, args.sessions)
    config = room_config(args)
    if deck is None or config is None:
        return 2
    if args.headless:
        from engine import default_run_dir
        from tui.cli.headless import run_headless

        runs = config.runs
        return run_headless(deck, args.run_dir or (runs and default_run_dir(deck, root=runs)))
    if not (sys.stdin.isatty() and sys.stdout.isatty()):  # checked before anything starts
        print(NO_TERMINAL.format(deck=args.deck), file=sys.stderr)
        return 2
    from tui.attach import run_attached
    from tui.cli.daemon import LOG_NAME, find_or_start

    try:
        entry, started, over = find_or_start(deck, args.run_dir, config.runs, args.sessions)
    except SwarmdeckError as exc:
        print(f"swarmdeck run: {exc}", file=sys.stderr)
        return 1
    for old in over:
        print(
            f"swarmdeck: run {old.run_id} of this deck is finished and left as it is "
            f"(swarmdeck attach {old.run_id}; swarmdeck stop {old.run_id}); starting a new run"
        )
    if args.sessions and not started:
        print(
            f"swarmdeck: an engine already serves this deck ({entry.run_id}): attached to it "
            "as it is; the sessions named were not started anew"
        )
    if started:
        print(f"swarmdeck: serving {entry.run_id} in the background ({entry.run_dir}/{LOG_NAME})")
    return run_attached(entry, "operator", config)


def main(argv: list[str] | None = None) -> int:
    """Every command; Ctrl-C ends any of them as it ends `tail -f`: no traceback, and
    killed by SIGINT (so a calling shell or script sees the interrupt, status 130)."""
    try:
        return _command(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:
        return _die_of_interrupt()


def _die_of_interrupt() -> int:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
    return 128 + signal.SIGINT  # not reached: the default action ends the process


def _command(argv: list[str]) -> int:
    if not sys.platform.startswith("linux"):  # PTYs via setsid, /proc, pidfd: Linux only
        print(f"swarmdeck: runs on Linux only (this is {sys.platform})", file=sys.stderr)
        return 2
    if argv and argv[0] == "bus":  # runs inside every session: stdlib-only, fast to start
        from engine.bus.cli import main as bus_main

        return bus_main(argv[1:])
    from tui.cli.parser import parser

    args = parser().parse_args(argv)
    from tui.cli.log_setup import configure_logging

    problem = configure_logging(args.log_level, args.log_file)
    if problem is not None:
        print(f"swarmdeck: {problem}", file=sys.stderr)
        return 2
    if args.command == "validate":
        from tui.cli.decks import validate

        return validate(args.deck)
    if args.command == "run":
        return _run(args)
    if args.command == "import":
        from tui.cli.deck_import import import_deck

        return import_deck(args)
    if args.command == "clean":
        from tui.cli.clean import clean

        return clean(args)
    if args.command == "completion":
        import shtab

        from tui.cli.parser import parser as build

        print(shtab.complete(build(), shell=args.shell))
        return 0
    if args.command == "schema":
        import json

        from engine import deck_schema

        print(json.dumps(deck_schema(), indent=2))
        return 0
    from tui.cli.control import COMMANDS as SCRIPTED
    from tui.cli.control import run_scripted

    if args.command in ("pause", "resume") and args.match is not None:
        if args.sessions:
            print(f"swarmdeck {args.command}: name sessions or --match, not both", file=sys.stderr)
            return 2
        import anyio

        from tui.cli.fleet_commands import fleet_command

        return anyio.run(fleet_command, args)
    if args.command in SCRIPTED:
        if args.command in ("pause", "resume") and not args.sessions:
            print(f"swarmdeck {args.command}: name SESSION… or --match GLOB", file=sys.stderr)
            return 2
        return run_scripted(args)
    from tui.cli.engines import COMMANDS, run_command  # every other command is a service one

    if args.command in COMMANDS:
        return run_command(args)
    return 2  # pragma: no cover (argparse enforces the choices)
