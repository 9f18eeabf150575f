"""A real bus (journal, socket, sweeper: `engine.bus.bus_server.open_bus`) in a process of its
own, so an attack may exhaust its descriptors or file size without touching the test
runner. Usage: python -m tests.adversarial.bus_process RUN_DIR LIMITS_JSON RLIMITS_JSON;
prints one JSON line (socket, tokens, pid), serves until its stdin closes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import sys
from pathlib import Path

import anyio

from engine.bus.bus_server import open_bus
from engine.bus.limits import BusLimits

SESSIONS = ("a", "b")
_RLIMITS = {"nofile": resource.RLIMIT_NOFILE, "fsize": resource.RLIMIT_FSIZE}


async def main(run_dir: Path, limits: dict[str, float], rlimits: dict[str, int]) -> None:
    for name, value in rlimits.items():
        resource.setrlimit(_RLIMITS[name], (value, value))
    async with open_bus(run_dir, SESSIONS, lambda event: None) as bus:
        bus.limits = dataclasses.replace(BusLimits(), **limits)  # type: ignore[arg-type]
        tokens = {s: bus.token_for(s) for s in SESSIONS}
        print(json.dumps({"socket": str(bus.socket_path), "tokens": tokens, "pid": os.getpid()}))
        sys.stdout.flush()
        await anyio.to_thread.run_sync(sys.stdin.read)


if __name__ == "__main__":
    anyio.run(main, Path(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3]))
