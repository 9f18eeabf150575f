"""Serve a test engine on a real Unix socket and drive it through EngineAPI only."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from engine.remote.control_server import open_control_server
from engine.remote.remote_engine import open_remote_engine
from engine.screen import line_text

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

    from engine.api import EngineAPI
    from engine.engine import Engine
    from engine.remote.control_server import ControlServer
    from engine.remote.remote_engine import RemoteEngine

ROOT = Path(__file__).resolve().parent.parent
# One long-lived session: what the service and SSH tests keep alive across clients.
SURVIVOR_DECK = """
[pool]
size = 2
warm = 1

[[session]]
name = "survivor"
command = "printf 'still-here\\\\n'; exec sleep 120"
"""


@contextmanager
def short_dir() -> Iterator[Path]:
    """pytest's tmp_path can be too long for AF_UNIX (108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="sd-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@asynccontextmanager
async def serving(engine: Engine) -> AsyncIterator[ControlServer]:
    with short_dir() as directory:
        async with open_control_server(engine, directory / "ctl" / "engine.sock") as server:
            yield server


@asynccontextmanager
async def attached(server: ControlServer, role: str = "operator") -> AsyncIterator[RemoteEngine]:
    async with open_remote_engine(server.socket_path, role, client="test") as remote:
        yield remote


def screen_text(api: EngineAPI, name: str) -> str:
    lines = api.screen_snapshot(name).lines
    return "\n".join(line_text(line).rstrip() for line in lines)


async def eventually(check: Callable[[], bool], timeout: float = 10) -> None:
    with anyio.fail_after(timeout):
        while not check():
            await anyio.sleep(0.01)


async def wait_shows(api: EngineAPI, name: str, needle: str, timeout: float = 10) -> None:
    await eventually(lambda: needle in screen_text(api, name), timeout)
