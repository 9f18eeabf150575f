"""`swarmdeck serve`: a deck's engine in the foreground behind a control socket (and SSH,
and the web).

CLI glue only: the engine is served by engine/remote/control_server.py and registered where `ls` and
`attach` find it (engine/remote/runtime.py). Imports stay inside each function so that
`swarmdeck --help` and `swarmdeck bus` stay fast.
"""

from __future__ import annotations

import os
import time
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

from anyio import TASK_STATUS_IGNORED

if TYPE_CHECKING:
    import argparse
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from anyio.abc import TaskStatus

    from engine import DeckSpec, Engine
    from tui.ssh.ssh_config import SSHConfig
    from tui.web.web_config import WebConfig


def serve_deck(args: argparse.Namespace) -> int:
    import anyio

    from engine import default_run_dir
    from tui.cli.decks import load_or_report, resolve_or_report
    from tui.cli.settings import room_config

    found = resolve_or_report("serve", args.deck, args.sessions)
    if found is None:
        return 2
    deck, config = load_or_report(*found), room_config(args)
    if deck is None or config is None:
        return 2
    run_dir = args.run_dir or (config.runs and default_run_dir(deck, root=config.runs))
    ssh, web = _ssh_config(args), web_config(args)
    return anyio.run(_serve, deck, run_dir, ssh, web)


async def _serve(
    deck: DeckSpec, run_dir: Path | None, ssh: SSHConfig | None = None, web: WebConfig | None = None
) -> int:
    """Serve until SIGTERM/SIGINT or a `shutdown` command; then stop every session."""
    import anyio

    from engine import default_run_dir, open_engine
    from engine.remote import (
        Registration,
        control_socket_path,
        keep_registered,
        open_control_server,
        prune,
        unregister,
    )

    prune()  # what engines killed with -9 left behind

    run_dir = (run_dir or default_run_dir(deck)).absolute()
    socket_path = control_socket_path(run_dir)
    entry = Registration(
        run_dir.name, deck.name, str(run_dir), str(socket_path), os.getpid(), time.time(),
        deck_path=str(deck.path.absolute()),
    )  # fmt: skip
    async with open_engine(deck, run_dir) as engine:
        await engine.start_all()
        async with (
            open_control_server(engine, socket_path) as server,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(keep_registered, engine, entry)
            tg.start_soon(stop_on_signal, server.stop_requested.set)
            if deck.exit_when == "done":  # serve's default is never: a room may restart
                tg.start_soon(_stop_when_done, engine, server.stop_requested.set)
            print(f"swarmdeck: serving {deck.name} on {socket_path}", flush=True)
            try:
                async with AsyncExitStack() as front_ends:
                    if ssh is not None:
                        await front_ends.enter_async_context(_ssh(ssh, socket_path, run_dir))
                    if web is not None:
                        title = f"swarmdeck · {deck.name}"
                        await front_ends.enter_async_context(
                            serve_web(web, socket_path, run_dir, title)
                        )
                    await server.stop_requested.wait()
            finally:
                unregister(entry)
                tg.cancel_scope.cancel()
    return 0 if engine.ok else 1


@asynccontextmanager
async def _ssh(ssh: SSHConfig, socket: Path, run_dir: Path) -> AsyncIterator[None]:
    from tui.ssh.ssh_server import open_ssh_server

    async with open_ssh_server(ssh, socket, run_dir) as (service, port):
        keys = len(service.keys)
        print(f"swarmdeck: ssh on {ssh.host}:{port} ({keys} authorized keys)", flush=True)
        yield


@asynccontextmanager
async def serve_web(web: WebConfig, socket: Path, run_dir: Path, title: str) -> AsyncIterator[None]:
    """Browser rooms for the block; prints one link per role (also `attach --web`)."""
    from tui.web.web_server import open_web_server

    async with open_web_server(web, socket, run_dir, title) as (_, links, links_file):
        where = links[web.roles[0]].split("/?", 1)[0]
        print(f"swarmdeck: web on {where} (at most {web.max_clients} rooms)", flush=True)
        for role, link in links.items():
            print(f"  {role + ':':<10}{link}", flush=True)
        print(f"  links also in {links_file} (mode 0600)", flush=True)
        yield


async def _stop_when_done(engine: Engine, stop: Callable[[], None]) -> None:
    await engine.wait_finished()
    print(f"swarmdeck: run over ({engine.verdict().outcome}); exit_when = done", flush=True)
    stop()


async def stop_on_signal(
    stop: Callable[[], None], *, task_status: TaskStatus[None] = TASK_STATUS_IGNORED
) -> None:
    """Call `stop` at the first SIGTERM/SIGINT; started (`tg.start`) once they are caught."""
    import signal

    import anyio

    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
        task_status.started()
        async for _ in received:
            stop()
            return


def web_config(args: argparse.Namespace, roles: tuple[str, ...] | None = None) -> WebConfig | None:
    """Checked before the engine starts, like `--ssh`'s options."""
    from tui.web.web_config import ROLES, web_config

    if args.web is None:
        if args.web_public:
            from tui.web.web_config import WebConfigError

            raise WebConfigError("--web-public needs --web [HOST:]PORT")
        return None
    return web_config(args.web, args.web_public, args.web_max_clients, roles or ROLES)


def _ssh_config(args: argparse.Namespace) -> SSHConfig | None:
    """Checked before the engine starts: a bad key file must not cost a started swarm."""
    from tui.ssh.authorized_keys import load_authorized_keys
    from tui.ssh.ssh_config import (
        SSHConfig,
        SSHConfigError,
        default_host_key_path,
        load_or_create_host_key,
        parse_duration,
        parse_listen,
    )

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
