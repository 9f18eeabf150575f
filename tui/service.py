"""`swarmdeck serve | ls | stop | attach`: the engine as a service (the tmux model).

CLI glue only: the engine is served by engine/remote/server.py, found through the
registry in engine/remote/runtime.py, and reached with open_remote_engine. Imports stay
inside each command so `swarmdeck --help` and `swarmdeck bus` stay fast.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    import anyio

    from engine.api import EngineAPI
    from engine.deck.spec import DeckSpec
    from tui.ssh.config import SSHConfig

COMMANDS = ("serve", "ls", "stop", "attach")


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="run a deck headless behind a control socket")
    serve.add_argument("deck", type=Path, help="deck file (TOML)")
    serve.add_argument("--run-dir", type=Path, help="where recordings and summary.json go")
    _add_ssh_options(serve)
    sub.add_parser("ls", help="list running engines")
    stop = sub.add_parser("stop", help="stop a running engine and all its sessions")
    stop.add_argument("run", help="run id, deck name, run directory or socket path")
    attach = sub.add_parser("attach", help="attach to a running engine")
    attach.add_argument("run", nargs="?", help="run id, deck name, ... (default: the only one)")
    attach.add_argument("--viewer", action="store_true", help="read-only (--role viewer)")
    attach.add_argument("--role", choices=("operator", "viewer"), help="default: operator")
    attach.add_argument("--headless", action="store_true", help="print screens as text")
    attach.add_argument("--watch", action="store_true", help="then print events until ^C")


def _add_ssh_options(serve: argparse.ArgumentParser) -> None:
    """`serve --ssh`: one control room per SSH connection (tui/ssh/, docs/ssh.md)."""
    ssh = serve.add_argument_group("serving over SSH (docs/ssh.md)")
    ssh.add_argument("--ssh", metavar="[HOST:]PORT", help="listen for SSH (host: loopback)")
    keys_help = 'public keys, each role="operator" or "viewer" (default)'
    ssh.add_argument("--authorized-keys", type=Path, metavar="FILE", help=keys_help)
    host_key_help = "default ~/.config/swarmdeck/ssh_host_ed25519_key, made once"
    ssh.add_argument("--host-key", type=Path, metavar="FILE", help=host_key_help)
    ssh.add_argument(
        "--ssh-max-clients", type=int, default=16, metavar="N", help="logged-in clients (16)"
    )
    ssh.add_argument("--ssh-idle-timeout", default="30m", metavar="TIME", help="no input for TIME")


def _ssh_config(args: argparse.Namespace) -> SSHConfig | None:
    """Checked before the engine starts: a bad key file must not cost a started swarm."""
    from tui.ssh.config import (
        SSHConfig,
        SSHConfigError,
        default_host_key_path,
        load_or_create_host_key,
        parse_duration,
        parse_listen,
    )
    from tui.ssh.keys import load_authorized_keys

    if args.ssh is None:
        return None
    if args.authorized_keys is None:
        raise SSHConfigError("--ssh needs --authorized-keys FILE")
    host, port = parse_listen(args.ssh)
    load_authorized_keys(args.authorized_keys)
    load_or_create_host_key(args.host_key or default_host_key_path())
    return SSHConfig(
        host, port, args.authorized_keys.absolute(), args.host_key or default_host_key_path(),
        max(1, args.ssh_max_clients), parse_duration(args.ssh_idle_timeout),
    )  # fmt: skip


def run_command(args: argparse.Namespace) -> int:
    import anyio

    from engine.errors import SwarmdeckError

    try:
        if args.command == "serve":
            return _serve_deck(args)
        if args.command == "ls":
            return _ls()
        if args.command == "stop":
            return anyio.run(_stop, args.run)
        if args.headless or args.watch:
            return anyio.run(_attach, args)
        return _attach_room(args)
    except SwarmdeckError as exc:
        print(f"swarmdeck {args.command}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return _reader_gone()
    except BaseExceptionGroup as group:  # printed from a task of the watch view
        if group.split(BrokenPipeError)[1] is not None:
            raise
        return _reader_gone()


def _reader_gone() -> int:
    """Stdout's reader left (`swarmdeck attach --headless | head`): exit quietly. Stdout
    now points at /dev/null so the interpreter's final flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 0


# -- serve ----------------------------------------------------------------------------------
def _serve_deck(args: argparse.Namespace) -> int:
    import anyio

    from tui.cli import load_or_report

    deck = load_or_report(args.deck)
    if deck is None:
        return 2
    return anyio.run(_serve, deck, args.run_dir, _ssh_config(args))


async def _serve(deck: DeckSpec, run_dir: Path | None, ssh: SSHConfig | None = None) -> int:
    """Serve until SIGTERM/SIGINT or a `shutdown` command; then stop every session."""
    import anyio

    from engine.engine import default_run_dir, open_engine
    from engine.remote.runtime import (
        Registration,
        control_socket_path,
        keep_registered,
        unregister,
    )
    from engine.remote.server import open_control_server

    run_dir = (run_dir or default_run_dir(deck)).absolute()
    socket_path = control_socket_path(run_dir)
    entry = Registration(
        run_dir.name, deck.name, str(run_dir), str(socket_path), os.getpid(), time.time(),
        deck_path=str(deck.path.absolute()),
    )  # fmt: skip
    async with open_engine(deck, run_dir) as engine:
        engine.start_all()
        async with (
            open_control_server(engine, socket_path) as server,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(keep_registered, engine, entry)
            tg.start_soon(_stop_on_signal, server.stop_requested.set)
            print(f"swarmdeck: serving {deck.name} on {socket_path}", flush=True)
            try:
                if ssh is None:
                    await server.stop_requested.wait()
                else:
                    await _serve_ssh(ssh, socket_path, run_dir, server.stop_requested)
            finally:
                unregister(entry)
                tg.cancel_scope.cancel()
    return 0 if engine.ok else 1


async def _serve_ssh(ssh: SSHConfig, socket: Path, run_dir: Path, stop: anyio.Event) -> None:
    from tui.ssh.server import open_ssh_server

    async with open_ssh_server(ssh, socket, run_dir) as (service, port):
        keys = len(service.keys)
        print(f"swarmdeck: ssh on {ssh.host}:{port} ({keys} authorized keys)", flush=True)
        await stop.wait()


async def _stop_on_signal(stop: Callable[[], None]) -> None:
    import signal

    import anyio

    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
        async for _ in received:
            stop()
            return


# -- ls, stop ---------------------------------------------------------------------------
def _ls() -> int:
    from engine.remote.runtime import registrations

    entries = registrations()
    if not entries:
        print("no running engines")
        return 0
    print(f"{'RUN':<36} {'DECK':<16} {'PID':>7} {'LIVE':>5} {'TOTAL':>5}  SOCKET / RUN DIR")
    for e in entries:
        print(f"{e.run_id:<36} {e.deck:<16} {e.pid:>7} {e.live:>5} {e.sessions:>5}  {e.socket}")
        print(f"{'':<73}  {e.run_dir}")
    return 0


async def _stop(ref: str) -> int:
    """Ask the engine to shut down over its socket, then wait for its process to exit."""
    from engine.remote.client import open_remote_engine
    from engine.remote.runtime import find_engine
    from tui.daemon import shutdown_and_wait

    entry = find_engine(ref)
    async with open_remote_engine(Path(entry.socket), client="swarmdeck stop") as remote:
        await shutdown_and_wait(remote)
    print(f"swarmdeck: stopped {entry.run_id}")
    return 0


# -- attach ---------------------------------------------------------------------------------
def _attach_room(args: argparse.Namespace) -> int:
    """The control room (also what each SSH connection runs, with its own PTY)."""
    from engine.remote.runtime import find_engine
    from tui.attach import run_attached

    if not sys.stdout.isatty():
        print("swarmdeck attach: needs a terminal (or --headless [--watch])", file=sys.stderr)
        return 2
    return run_attached(find_engine(args.run), _role(args))


def _role(args: argparse.Namespace) -> str:
    return str(args.role or ("viewer" if args.viewer else "operator"))


async def _attach(args: argparse.Namespace) -> int:
    from engine.remote.client import open_remote_engine
    from engine.remote.runtime import find_engine
    from tui.watch import watch

    entry = find_engine(args.run)
    async with open_remote_engine(
        Path(entry.socket), _role(args), client="attach --headless"
    ) as remote:
        if args.watch:
            await watch(remote, lambda: _print_screens(remote))
        else:
            _print_screens(remote)
    return 0


def _print_screens(api: EngineAPI) -> None:
    from engine.screen import line_text

    for info in api.list_sessions():
        print(f"== {info.name} [{info.state}]")
        for line in api.screen_snapshot(info.name).lines:
            text = line_text(line).rstrip()
            if text:
                print(text)
    sys.stdout.flush()
