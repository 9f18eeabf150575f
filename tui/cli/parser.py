"""The one `swarmdeck` argument parser: every sub-command and its options, in one place.

argparse and pathlib only, so building it costs nothing next to the command it picks.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DECK_HELP = "deck file (TOML; default: ./swarmdeck.toml)"
SESSIONS_HELP = "run only these sessions (and what they depend on)"
RUN_DIR_HELP = "where recordings and summary.json go"
RUN_HELP = "run id, deck name, run directory or socket path"
THEME_HELP = "the room's theme (default: config.toml's, else textual-dark)"


def parser() -> argparse.ArgumentParser:
    from importlib.metadata import version

    top = argparse.ArgumentParser(
        prog="swarmdeck", description="A terminal control room for many concurrent sessions."
    )
    top.add_argument("--version", action="version", version=f"swarmdeck {version('swarmdeck')}")
    top.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="warning",
        help="what goes to the log (default: warning)",
    )
    top.add_argument("--log-file", type=Path, metavar="FILE", help="the log (default: stderr)")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="run a deck: attach to its engine, started if needed")
    run.add_argument("deck", type=Path, nargs="?", help=DECK_HELP)
    run.add_argument("sessions", nargs="*", metavar="SESSION", help=SESSIONS_HELP)
    run.add_argument(
        "--headless", action="store_true", help="no control room: live table and summary"
    )
    run.add_argument("--run-dir", type=Path, help=RUN_DIR_HELP)
    run.add_argument("--theme", help=THEME_HELP)
    validate = sub.add_parser("validate", help="check a deck file and list every problem")
    validate.add_argument("deck", type=Path, nargs="?", help=DECK_HELP)
    imported = sub.add_parser(
        "import", help="print a deck made from a Procfile, process-compose.yaml or mprocs.yaml"
    )
    imported.add_argument("file", type=Path, metavar="FILE")
    imported.add_argument(
        "--format", choices=("procfile", "process-compose", "mprocs"), help="default: guessed"
    )
    sub.add_parser("schema", help="print the deck's JSON Schema (for editor completion)")
    completion = sub.add_parser("completion", help="print a shell completion script")
    completion.add_argument("shell", choices=("bash", "zsh", "tcsh"))
    serve = sub.add_parser("serve", help="run a deck headless behind a control socket")
    serve.add_argument("deck", type=Path, nargs="?", help=DECK_HELP)
    serve.add_argument("sessions", nargs="*", metavar="SESSION", help=SESSIONS_HELP)
    serve.add_argument("--run-dir", type=Path, help=RUN_DIR_HELP)
    _add_ssh_options(serve)
    _add_web_options(serve)
    clean = sub.add_parser("clean", help="remove old run directories and their worktrees")
    clean.add_argument(
        "--older-than", default="7d", metavar="AGE", help="unchanged for AGE (default 7d)"
    )
    clean.add_argument("--dry-run", action="store_true", help="only say what would go")
    clean.add_argument(
        "--runs",
        type=Path,
        metavar="DIR",
        help="default: config.toml's runs, else ./.swarmdeck/runs",
    )
    ls = sub.add_parser("ls", help="list running engines")
    ls.add_argument("--json", action="store_true", help="one JSON array of registrations")
    stop = sub.add_parser("stop", help="stop a running engine and all its sessions")
    stop.add_argument("run", nargs="?", help=f"{RUN_HELP} (default: the only one)")
    _add_attach(sub.add_parser("attach", help="attach to a running engine"))
    # Listed for help only: main() hands `bus` to the stdlib-only client before parsing.
    sub.add_parser("bus", help="the message bus, from inside a session (swarmdeck bus --help)")
    _add_scripting(sub)
    _add_fleet(sub)
    return top


def _add_fleet(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Run-wide operator commands on a running engine (tui/cli/fleet_commands.py)."""
    # pause/resume --match GLOB are the scripting commands' run-wide form (_add_scripting)
    parallel = sub.add_parser("parallel", help="change max_parallel of a running engine, live")
    parallel.add_argument(
        "value",
        help="1..the local pool size (sessions on this machine; a host's: its pool.size), or auto",
    )
    parallel.add_argument("run", nargs="?", help=f"{RUN_HELP} (default: the only one)")


def _add_attach(attach: argparse.ArgumentParser) -> None:
    attach.add_argument("run", nargs="?", help=f"{RUN_HELP} (default: the only one)")
    attach.add_argument("--viewer", action="store_true", help="read-only (--role viewer)")
    attach.add_argument("--role", choices=("operator", "viewer"), help="default: operator")
    attach.add_argument("--headless", action="store_true", help="print screens as text")
    attach.add_argument("--watch", action="store_true", help="then print events until ^C")
    attach.add_argument("--theme", help=THEME_HELP)
    _add_web_options(attach)


def _add_ssh_options(serve: argparse.ArgumentParser) -> None:
    """`serve --ssh`: one control room per SSH connection (tui/ssh/, docs/ssh.md)."""
    ssh = serve.add_argument_group("serving over SSH (docs/ssh.md)")
    ssh.add_argument("--ssh", metavar="[HOST:]PORT", help="listen for SSH (host: loopback)")
    keys_help = 'public keys, each role="operator" or "viewer" (default)'
    ssh.add_argument("--authorized-keys", type=Path, metavar="FILE", help=keys_help)
    host_key_help = "default ~/.local/state/swarmdeck/ssh_host_ed25519_key, made once"
    ssh.add_argument("--host-key", type=Path, metavar="FILE", help=host_key_help)
    ssh.add_argument(
        "--ssh-max-clients", type=int, default=16, metavar="N", help="logged-in clients (16)"
    )
    ssh.add_argument("--ssh-idle-timeout", default="30m", metavar="TIME", help="no input for TIME")


def _add_web_options(command: argparse.ArgumentParser) -> None:
    """`--web`: the control room in a browser, one per link opened (tui/web/, docs/web.md)."""
    web = command.add_argument_group("serving to a browser (docs/web.md)")
    web.add_argument("--web", metavar="[HOST:]PORT", help="listen for browsers (host: loopback)")
    public_help = "allow a non-loopback --web host (plain HTTP: tokens travel in clear)"
    web.add_argument("--web-public", action="store_true", help=public_help)
    web.add_argument(
        "--web-max-clients", type=int, default=16, metavar="N", help="browser rooms at once (16)"
    )


def _add_scripting(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Driving a running engine from the shell (tui/cli/control.py): one command per
    control-protocol op, with the room's roles (the engine refuses a viewer's control)."""
    sessions = _scripted(sub, "sessions", "list a running engine's sessions")
    sessions.add_argument("--json", action="store_true", help="one JSON array of SessionInfo")
    for name, what in (
        ("pause", "SIGSTOP"),
        ("resume", "SIGCONT"),
        ("terminate", "stop (SIGKILL after the grace)"),
        ("restart", "queue again (final sessions)"),
        ("start", "start (autostart = false)"),
    ):
        command = _scripted(sub, name, f"{what} sessions of a running engine", operator=True)
        if name in (
            "pause",
            "resume",
        ):  # by name, or run-wide by pattern (tui/cli/fleet_commands.py)
            command.add_argument("sessions", nargs="*", metavar="SESSION")
            command.add_argument(
                "--match", metavar="GLOB", help="every session (or template) matching, e.g. '*'"
            )
        else:
            command.add_argument("sessions", nargs="+", metavar="SESSION")
    send = _scripted(sub, "send", "type TEXT into a session", operator=True)
    send.add_argument("session", metavar="SESSION")
    send.add_argument("text", metavar="TEXT", help="sent as is (UTF-8)")
    send.add_argument("--enter", action="store_true", help="then press Enter (CR)")
    capture = _scripted(sub, "capture", "print a session's screen")
    capture.add_argument("session", metavar="SESSION")
    kind = capture.add_mutually_exclusive_group()
    kind.add_argument("--ansi", action="store_true", help="with colours (SGR escapes)")
    kind.add_argument("--history", action="store_true", help="the scrollback, then the screen")
    logs = _scripted(sub, "logs", "print a session's recorded output")
    logs.add_argument("session", metavar="SESSION")
    logs.add_argument("-f", "--follow", action="store_true", help="until the session ends")
    add = _scripted(sub, "add", "start a new session in a running engine", operator=True)
    add.add_argument("--name", required=True)
    add.add_argument("--command", required=True, dest="session_command", metavar="COMMAND")
    add.add_argument("--cwd", help="working directory (relative: to the deck's)")
    add.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")


def _scripted(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    operator: bool = False,
) -> argparse.ArgumentParser:
    command = sub.add_parser(name, help=help_text)
    command.add_argument("run", metavar="RUN", help=RUN_HELP)
    default = "operator" if operator else "viewer"
    command.add_argument("--role", choices=("operator", "viewer"), help=f"default: {default}")
    command.add_argument("--viewer", action="store_true", help="read-only (--role viewer)")
    command.set_defaults(default_role=default)
    return command
