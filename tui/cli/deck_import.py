"""`swarmdeck import FILE > deck.toml`: a Procfile, process-compose.yaml or mprocs.yaml as
a deck, so moving over is one command.

What has an equivalent is carried over (commands, working directories, environment,
dependencies and their conditions, restart policies, disabled / autostart, stop signals
and grace); what has none is named on stderr, one line per key, and left out. The deck is
printed as TOML (tomli_w: quoting and escaping done right) with a pool big enough for
every process at once, since these tools run them all side by side; `swarmdeck validate`
accepts it. Relative working directories stay relative: put the deck beside the file.

Size: three small translators and the one table of names they share.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    from pathlib import Path

Table = dict[str, Any]
FORMATS = ("procfile", "process-compose", "mprocs")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# process-compose's depends_on conditions, as a deck's
_CONDITIONS = {
    "process_completed_successfully": "succeeded",
    "process_completed": "finished",
    "process_started": "started",
    "process_healthy": "started",
    "process_log_ready": "started",
}


class ImportProblem(Exception):
    """The file cannot be read as the format (the message names file and place)."""


def import_deck(args: argparse.Namespace) -> int:
    """Print the deck for `args.file` (format from `args.format` or the file itself)."""
    import tomli_w

    path: Path = args.file
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"swarmdeck import: {path}: cannot read it: {exc}", file=sys.stderr)
        return 2
    notes: list[str] = []
    try:
        kind = args.format or _detect(path, text)
        sessions = _TRANSLATORS[kind](path, text, notes)
    except ImportProblem as exc:
        print(f"swarmdeck import: {path}: {exc}", file=sys.stderr)
        return 2
    if not sessions:
        print(f"swarmdeck import: {path}: no processes in it", file=sys.stderr)
        return 2
    for note in notes:
        print(f"swarmdeck import: {path}: {note}", file=sys.stderr)
    size = len(sessions)
    sys.stdout.write(f"# imported from {path.name} ({kind}) by swarmdeck import\n")
    sys.stdout.write(tomli_w.dumps({"pool": {"size": size, "warm": min(2, size)}}))
    for session in sessions:
        sys.stdout.write("\n" + _session_toml(session))
    return 0


def _session_toml(session: Table) -> str:
    """One `[[session]]` table as a deck shows them (tomli_w would inline short ones):
    values through tomli_w, a table value (env, backoff: flat) as `[session.KEY]`."""
    import tomli_w

    lines, tables = ["[[session]]\n"], []
    for key, value in session.items():
        if isinstance(value, dict):
            tables.append(f"[session.{key}]\n" + tomli_w.dumps(value))
        else:
            lines.append(tomli_w.dumps({key: value}))
    return "".join(lines) + "".join(tables)


def _detect(path: Path, text: str) -> str:
    if path.name.lower().startswith("procfile"):
        return "procfile"
    data = _yaml(text) if path.suffix.lower() in (".yaml", ".yml") else None
    if isinstance(data, dict) and isinstance(data.get("processes"), dict):
        return "process-compose"
    if isinstance(data, dict) and isinstance(data.get("procs"), dict):
        return "mprocs"
    raise ImportProblem(
        "cannot tell its format: expected a Procfile, or YAML with `processes:` "
        "(process-compose) or `procs:` (mprocs); name it with --format"
    )


def _yaml(text: str) -> object:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc
        raise ImportProblem(f"{where}invalid YAML ({problem})") from None


def _name(raw: object, taken: set[str]) -> str:
    """A deck session name from a process name: unsafe characters become '-', unique."""
    base = _UNSAFE.sub("-", str(raw)).strip("-._")[:60] or "proc"
    if not base[0].isalnum():
        base = f"p{base}"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


# -- Procfile ------------------------------------------------------------------------------
_PROC_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s?(.*)$")


def _procfile(path: Path, text: str, notes: list[str]) -> list[Table]:
    sessions: list[Table] = []
    taken: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _PROC_LINE.match(line)
        if match is None or not match[2].strip():
            raise ImportProblem(f"line {number}: expected `name: command`, got {line!r}")
        sessions.append({"name": _name(match[1], taken), "command": match[2].strip()})
    return sessions


# -- process-compose -----------------------------------------------------------------------
def _process_compose(path: Path, text: str, notes: list[str]) -> list[Table]:
    data = _yaml(text)
    if not isinstance(data, dict) or not isinstance(data.get("processes"), dict):
        raise ImportProblem("expected a `processes:` mapping (process-compose)")
    common = _environment(data.get("environment"), "environment")
    for key in data:
        if key not in ("version", "processes", "environment"):
            notes.append(f"{key}: not imported (no deck equivalent)")
    taken: set[str] = set()
    names = {raw: _name(raw, taken) for raw in data["processes"]}
    sessions = []
    for raw, proc in data["processes"].items():
        where = f"processes.{raw}"
        if not isinstance(proc, dict) or not isinstance(proc.get("command"), str):
            raise ImportProblem(f"{where}: expected a mapping with a `command` string")
        session: Table = {"name": names[raw], "command": proc["command"]}
        for key, value in proc.items():
            _pc_key(session, key, value, f"{where}.{key}", names, notes)
        env = {**common, **session.get("env", {})}
        if env:
            session["env"] = env
        sessions.append(session)
    return sessions


def _pc_key(
    session: Table, key: str, value: Any, where: str, names: dict[Any, str], notes: list[str]
) -> None:
    if key == "command":
        return
    if key == "working_dir" and isinstance(value, str):
        session["cwd"] = value
    elif key == "environment":
        session["env"] = _environment(value, where)
    elif key == "disabled" and isinstance(value, bool):
        if value:
            session["autostart"] = False
    elif key == "depends_on" and isinstance(value, dict):
        session["depends_on"] = [
            _dependency(dep, rule, where, names) for dep, rule in value.items()
        ]
    elif key == "availability" and isinstance(value, dict):
        _availability(session, value, where, notes)
    elif key == "shutdown" and isinstance(value, dict):
        for part, setting in value.items():
            if part == "signal" and isinstance(setting, int):
                session["stop_signal"] = setting
            elif part == "timeout_seconds" and isinstance(setting, int | float):
                session["stop_grace"] = setting
            else:
                notes.append(f"{where}.{part}: not imported (no deck equivalent)")
    else:
        notes.append(f"{where}: not imported (no deck equivalent)")


def _dependency(dep: Any, rule: Any, where: str, names: dict[Any, str]) -> Table:
    if dep not in names:
        raise ImportProblem(f"{where}.{dep}: no process named {dep!r}")
    condition = rule.get("condition") if isinstance(rule, dict) else None
    wanted = _CONDITIONS.get(condition or "process_started")
    if wanted is None:
        known = ", ".join(_CONDITIONS)
        raise ImportProblem(f"{where}.{dep}.condition: expected one of {known}, got {condition!r}")
    return {"name": names[dep], "condition": wanted}


def _availability(session: Table, value: Table, where: str, notes: list[str]) -> None:
    restart = value.get("restart", "no")
    limit = value.get("max_restarts")
    if restart == "always":
        session["restart"] = "always"
    elif restart == "on_failure" and isinstance(limit, int) and limit > 0:
        session["retries"] = min(limit, 100)  # bounded: the deck's retries
    elif restart == "on_failure":
        session["restart"] = "on-failure"
    elif restart == "exit_on_failure":
        session["critical"] = True
    elif restart != "no":
        notes.append(f"{where}.restart: {restart!r} not imported")
    delay = value.get("backoff_seconds")
    if isinstance(delay, int | float) and ("restart" in session or "retries" in session):
        session["backoff"] = {"initial": delay}
    for key in value:
        if key not in ("restart", "max_restarts", "backoff_seconds"):
            notes.append(f"{where}.{key}: not imported (no deck equivalent)")


def _environment(value: object, where: str) -> dict[str, str]:
    """process-compose's `["KEY=value", ...]` (a mapping is taken too)."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    if not isinstance(value, list):
        raise ImportProblem(f"{where}: expected a list of KEY=value")
    env = {}
    for item in value:
        key, equals, setting = str(item).partition("=")
        if not equals or not key:
            raise ImportProblem(f"{where}: expected KEY=value, got {item!r}")
        env[key] = setting
    return env


# -- mprocs --------------------------------------------------------------------------------
def _mprocs(path: Path, text: str, notes: list[str]) -> list[Table]:
    data = _yaml(text)
    if not isinstance(data, dict) or not isinstance(data.get("procs"), dict):
        raise ImportProblem("expected a `procs:` mapping (mprocs)")
    for key in data:
        if key != "procs":
            notes.append(f"{key}: not imported (no deck equivalent)")
    taken: set[str] = set()
    sessions = []
    for raw, proc in data["procs"].items():
        where = f"procs.{raw}"
        session: Table = {"name": _name(raw, taken)}
        if isinstance(proc, str):  # `name: "command"` short form
            proc = {"shell": proc}
        if not isinstance(proc, dict):
            raise ImportProblem(f"{where}: expected a mapping or a command string")
        if isinstance(proc.get("shell"), str):
            session["command"] = proc["shell"]
        elif isinstance(proc.get("cmd"), list) and proc["cmd"]:
            session["command"] = [str(arg) for arg in proc["cmd"]]
        else:
            raise ImportProblem(f"{where}: expected `shell: COMMAND` or `cmd: [PROGRAM, ...]`")
        for key, value in proc.items():
            _mprocs_key(session, key, value, f"{where}.{key}", notes)
        sessions.append(session)
    return sessions


def _mprocs_key(session: Table, key: str, value: Any, where: str, notes: list[str]) -> None:
    if key in ("shell", "cmd"):
        return
    if key == "cwd" and isinstance(value, str):
        session["cwd"] = value.removeprefix("<CONFIG_DIR>/").removeprefix("<CONFIG_DIR>") or "."
    elif key == "env" and isinstance(value, dict):
        unset = [k for k, v in value.items() if v is None]
        if unset:
            notes.append(f"{where}: unsetting {', '.join(map(str, unset))} not imported")
        session["env"] = {str(k): str(v) for k, v in value.items() if v is not None}
    elif key == "autostart" and isinstance(value, bool):
        if not value:
            session["autostart"] = False
    elif key == "autorestart" and isinstance(value, bool):
        if value:
            session["restart"] = "always"
    elif key == "stop" and value == "hard-kill":
        session["stop_signal"] = "KILL"
    elif key == "stop" and isinstance(value, str) and value.upper().startswith("SIG"):
        session["stop_signal"] = value.upper()
    else:
        notes.append(f"{where}: not imported (no deck equivalent)")


_TRANSLATORS = {"procfile": _procfile, "process-compose": _process_compose, "mprocs": _mprocs}
