"""`swarmdeck sessions | pause | resume | terminate | restart | send | capture | logs | add`:
a running engine driven from the shell, one control-protocol command each.

Every command attaches as a client of the engine's control socket with a role (read-only
ones as a viewer, the rest as an operator, `--role` to choose), awaits the engine's reply
and exits 0, or prints the engine's error and exits 1: a viewer's `pause` is refused by the
engine itself (NotPermittedError), exactly as in the control room.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    from engine.remote import RemoteEngine

COMMANDS = ("sessions", "pause", "resume", "terminate", "restart", "send", "capture", "logs", "add")
ENTER = b"\r"


def run_scripted(args: argparse.Namespace) -> int:
    import anyio

    from engine import SwarmdeckError

    try:
        return anyio.run(_attached, args)
    except SwarmdeckError as exc:
        print(f"swarmdeck {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `swarmdeck logs RUN s -f | head`
        from tui.cli.engines import reader_gone

        return reader_gone()


def role(args: argparse.Namespace) -> str:
    return str(args.role or ("viewer" if args.viewer else args.default_role))


async def _attached(args: argparse.Namespace) -> int:
    from engine.remote import find_engine, open_remote_engine

    entry = find_engine(args.run)
    client = f"swarmdeck {args.command}"
    async with open_remote_engine(Path(entry.socket), role(args), client=client) as remote:
        if args.command == "logs":
            from tui.cli.logs import print_logs

            return await print_logs(remote, args.session, args.follow)
        return await _COMMANDS[args.command](remote, args)


async def _sessions(remote: RemoteEngine, args: argparse.Namespace) -> int:
    infos = remote.list_sessions()
    if args.json:
        print(json.dumps([info.model_dump(mode="json") for info in infos], indent=2))
        return 0
    print(f"{'SESSION':<24} {'STATE':<11} {'PID':>7} {'TRIES':>5}  {'WAITING':<8} REASON")
    for info in infos:
        pid, tries, waiting = info.pid or "", len(info.attempts), info.attention or "-"
        print(f"{info.name:<24} {info.state:<11} {pid:>7} {tries:>5}  {waiting:<8} {info.reason}")
    return 0


async def _each(remote: RemoteEngine, args: argparse.Namespace) -> int:
    """The command on every SESSION named, in order; each refusal said, exit 1 if any."""
    from engine import SwarmdeckError

    failed = 0
    for name in args.sessions:
        try:
            await getattr(remote, args.command)(name)  # pause, resume, terminate, restart
        except SwarmdeckError as exc:
            print(f"swarmdeck {args.command}: {name}: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


async def _send(remote: RemoteEngine, args: argparse.Namespace) -> int:
    data = args.text.encode() + (ENTER if args.enter else b"")
    await remote.send_input(args.session, data)
    return 0


async def _capture(remote: RemoteEngine, args: argparse.Namespace) -> int:
    from tui.cli.capture import ansi_lines, text_lines

    screen = remote.screen_snapshot(args.session)
    lines = list(screen.lines)
    if args.history:
        lines = [*await remote.fetch_scrollback(args.session), *lines]
    rendered = ansi_lines(lines) if args.ansi else text_lines(lines)
    while rendered and not rendered[-1].strip():
        rendered.pop()  # the empty rows below the last output
    sys.stdout.write("".join(f"{line}\n" for line in rendered))
    return 0


async def _add(remote: RemoteEngine, args: argparse.Namespace) -> int:
    table: dict[str, object] = {"name": args.name, "command": args.session_command}
    if args.cwd is not None:
        table["cwd"] = args.cwd
    if args.env:
        table["env"] = dict(_assignment(item) for item in args.env)
    print(await remote.add(table))
    return 0


def _assignment(item: str) -> tuple[str, str]:
    from engine import SwarmdeckError

    key, equals, value = item.partition("=")
    if not equals or not key:
        raise SwarmdeckError(f"--env {item!r}: expected KEY=VALUE")
    return key, value


_COMMANDS = {
    "sessions": _sessions,
    "pause": _each,
    "resume": _each,
    "terminate": _each,
    "restart": _each,
    "send": _send,
    "capture": _capture,
    "add": _add,
}
