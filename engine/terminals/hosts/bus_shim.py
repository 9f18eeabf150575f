"""What a host gets so that `swarmdeck bus …` works there with nothing installed.

Next to the forwarded bus socket (bus_forward.py) the engine writes, in one short exec:

- `lib/engine/…`: the engine's own stdlib-only bus CLI (engine/bus/cli.py and the four
  modules it imports, in packages whose `__init__` is empty), so the CLI runs unchanged
  and speaks exactly the engine's protocol version. Files rather than one script: Python
  caches their bytecode in `__pycache__` there, so only a connection's first command pays
  the ~20 ms of compiling ~30 KB. They are read from the engine's files, as the
  launcher's source is (remote_launcher.py), never imported here.
- `bin/swarmdeck`: a POSIX sh script, first on the job's PATH. `swarmdeck bus …` runs that
  CLI with the host's `python3 -I -S`; any other command goes to a `swarmdeck` installed
  further down the PATH, or says that only `bus` is available on the host.

The command is written for a POSIX login shell (as remote_terminal.py's), quoting every
file's content in single quotes.
"""

from __future__ import annotations

import functools
import shlex
from pathlib import Path

__all__ = ["BUNDLED", "cli_code", "install_command", "library", "shim_source"]

_ENGINE = Path(__file__).resolve().parents[2]
BUNDLED: tuple[str, ...] = (  # every module engine/bus/cli.py needs, engine's own stubbed
    "engine.errors",
    "engine.deck.priorities",
    "engine.bus.bus_errors",
    "engine.bus.bus_client",
    "engine.bus.cli",
)
_PACKAGES = ("engine", "engine.deck", "engine.bus")  # empty __init__ files on the host


@functools.cache
def library() -> dict[str, str]:
    """The files of `lib/` on the host (path under it -> text): the bus CLI's modules as
    they are here, in packages whose `__init__` is empty."""
    files = {f"{package.replace('.', '/')}/__init__.py": "" for package in _PACKAGES}
    for name in BUNDLED:
        files[f"{name.replace('.', '/')}.py"] = _module_path(name).read_text()
    return files


def _module_path(name: str) -> Path:
    return _ENGINE.parent.joinpath(*name.split(".")).with_suffix(".py")


def cli_code(lib: str) -> str:
    """`python3 -I -S -c` code running the bus CLI from `lib` with the command's arguments."""
    start = "from engine.bus.cli import main; sys.exit(main())"
    return f"import sys; sys.path.insert(0, {lib!r}); {start}"


def shim_source(directory: str) -> str:
    """`bin/swarmdeck` for a bus directory on the host."""
    here, code = shlex.quote(f"{directory}/bin"), shlex.quote(cli_code(f"{directory}/lib"))
    return "\n".join(
        [
            "#!/bin/sh",
            "# swarmdeck on a host, written by the swarmdeck engine (docs/hosts.md)",
            'if [ "$1" = bus ]; then',
            "    shift",
            "    command -v python3 >/dev/null 2>&1 || {",
            "        echo 'swarmdeck bus: python3 is needed on this host' >&2; exit 3; }",
            f'    exec python3 -I -S -c {code} "$@"',
            "fi",
            "IFS=:",
            "for d in $PATH; do",
            f'    [ "$d" != {here} ] && [ -x "$d/swarmdeck" ] && exec "$d/swarmdeck" "$@"',
            "done",
            "echo 'swarmdeck: only `swarmdeck bus ...` is available on this host' >&2",
            "exit 127",
            "",
        ]
    )


def install_command(directory: str, stale: str | None = None) -> str:
    """Make `directory` (0700, refused if it exists) with the library and the shim in it;
    remove `stale` (the directory of a connection that dropped) first."""
    d = shlex.quote(directory)
    steps = ["set -e", "umask 077"]
    if stale is not None:
        steps.append(f"rm -rf {shlex.quote(stale)}")
    packages = " ".join(shlex.quote(f"{directory}/lib/{p.replace('.', '/')}") for p in _PACKAGES)
    steps += [f"mkdir -m 700 {d}", f"mkdir -p {d}/bin {packages}"]
    for path, text in library().items():
        steps.append(f"printf %s {shlex.quote(text)} > {shlex.quote(f'{directory}/lib/{path}')}")
    steps += [
        f"printf %s {shlex.quote(shim_source(directory))} > {d}/bin/swarmdeck",
        f"chmod 700 {d}/bin/swarmdeck",
    ]
    return f"exec sh -c {shlex.quote('; '.join(steps))}"
