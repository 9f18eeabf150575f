"""`swarmdeck ls | stop | attach | pause | resume | parallel`: the engines that are
running, and reaching one.

Engines are found through the registry in engine/remote/runtime.py and reached with
open_remote_engine. Imports stay inside each command so `swarmdeck --help` stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    from engine import EngineAPI
    from engine.remote import Registration
    from tui.web.web_config import WebConfig

COMMANDS = ("serve", "ls", "stop", "attach", "parallel")


def run_command(args: argparse.Namespace) -> int:
    import anyio

    from engine import SwarmdeckError

    try:
        if args.command == "serve":
            from tui.cli.serving import serve_deck

            return serve_deck(args)
        if args.command == "ls":
            return _ls(args.json)
        if args.command == "stop":
            return anyio.run(_stop, args.run)
        if args.command == "parallel":
            from tui.cli.fleet_commands import fleet_command

            return anyio.run(fleet_command, args)
        if args.web is not None:
            return _attach_web(args)
        if args.headless or args.watch:
            return anyio.run(_attach, args)
        return _attach_room(args)
    except SwarmdeckError as exc:
        print(f"swarmdeck {args.command}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return reader_gone()
    except BaseExceptionGroup as group:  # printed from a task of the watch view
        if group.split(BrokenPipeError)[1] is not None:
            raise
        return reader_gone()


def reader_gone() -> int:
    """Stdout's reader left (`swarmdeck attach --headless | head`): exit quietly. Stdout
    now points at /dev/null so the interpreter's final flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 0


# -- ls, stop ---------------------------------------------------------------------------
def _ls(as_json: bool) -> int:
    from engine.remote import registrations

    entries = registrations()
    if as_json:
        import json
        from dataclasses import asdict

        print(json.dumps([asdict(e) for e in entries], indent=2))
        return 0
    if not entries:
        print("no running engines")
        return 0
    print(f"{'RUN':<36} {'DECK':<16} {'PID':>7} {'LIVE':>5} {'TOTAL':>5}  SOCKET / RUN DIR")
    for e in entries:
        print(f"{e.run_id:<36} {e.deck:<16} {e.pid:>7} {e.live:>5} {e.sessions:>5}  {e.socket}")
        print(f"{'':<73}  {e.run_dir}")
    return 0


async def _stop(ref: str | None) -> int:
    """Ask the engine to shut down over its socket, then wait for its process to exit."""
    from engine.remote import find_engine, open_remote_engine
    from tui.cli.daemon import shutdown_and_wait

    entry = find_engine(ref)
    async with open_remote_engine(Path(entry.socket), client="swarmdeck stop") as remote:
        await shutdown_and_wait(remote)
    print(f"swarmdeck: stopped {entry.run_id}")
    return 0


# -- attach ---------------------------------------------------------------------------------
def _attach_room(args: argparse.Namespace) -> int:
    """The control room (also what each SSH connection runs, with its own PTY)."""
    from engine.remote import find_engine
    from tui.cli.settings import room_config

    if not sys.stdout.isatty():
        print("swarmdeck attach: needs a terminal (or --headless [--watch])", file=sys.stderr)
        return 2
    config = room_config(args)
    if config is None:
        return 2
    from tui.attach import run_attached

    return run_attached(find_engine(args.run), _role(args), config)


def _attach_web(args: argparse.Namespace) -> int:
    """Browser rooms for an engine served elsewhere; `--viewer` hands out a viewer link
    only. Until ^C / SIGTERM, or until the engine goes away."""
    import anyio

    from engine import SwarmdeckError
    from engine.remote import find_engine
    from tui.cli.serving import web_config

    if args.headless or args.watch:
        raise SwarmdeckError("--web serves rooms to browsers: not with --headless or --watch")
    viewer_only = _role(args) == "viewer"
    config = web_config(args, ("viewer",) if viewer_only else None)
    assert config is not None
    return anyio.run(_serve_web_rooms, find_engine(args.run), config)


async def _serve_web_rooms(entry: Registration, config: WebConfig) -> int:
    import anyio

    from engine.remote import open_remote_engine
    from tui.cli.serving import serve_web, stop_on_signal

    socket, run_dir = Path(entry.socket), Path(entry.run_dir)
    async with (
        open_remote_engine(socket, "viewer", client="attach --web") as watcher,
        anyio.create_task_group() as tg,
    ):
        await tg.start(stop_on_signal, tg.cancel_scope.cancel)  # caught before any link shows
        async with serve_web(config, socket, run_dir, f"swarmdeck · {entry.deck}"):
            with watcher.subscribe() as events:
                async for _ in events:  # ends when the engine goes away
                    pass
        tg.cancel_scope.cancel()
    if watcher.lost is not None and "closed by client" not in watcher.lost:
        print(f"swarmdeck attach: the engine went away ({watcher.lost})", file=sys.stderr)
        return 1
    return 0


def _role(args: argparse.Namespace) -> str:
    return str(args.role or ("viewer" if args.viewer else "operator"))


async def _attach(args: argparse.Namespace) -> int:
    from engine.remote import find_engine, open_remote_engine
    from tui.cli.figures import balance_lines, contention_lines
    from tui.cli.watch import watch

    entry = find_engine(args.run)
    async with open_remote_engine(
        Path(entry.socket), _role(args), client="attach --headless"
    ) as remote:
        if args.watch:
            await watch(remote, lambda: _print_screens(remote))
        else:
            _print_screens(remote)
            lines = contention_lines(remote.contention_history())
            lines += balance_lines(remote.bus_statistics().balance)
            print("\n".join(lines), flush=True)
    return 0


def _print_screens(api: EngineAPI) -> None:
    from engine import line_text

    for info in api.list_sessions():
        print(f"== {info.name} [{info.state}]")
        for line in api.screen_snapshot(info.name).lines:
            text = line_text(line).rstrip()
            if text:
                print(text)
    sys.stdout.flush()
