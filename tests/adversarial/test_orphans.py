"""Nothing a session starts outlives the engine: not a process that ignores SIGHUP, not a
`setsid -f` daemon, not after a clean stop and not after `kill -9` of `serve`
(issue 20 item 12; the warden, engine/terminals/warden.py)."""

from __future__ import annotations

import contextlib
import os
import signal
from typing import TYPE_CHECKING

import anyio
import pytest

from tests.adversarial.serve_support import alive, runtime_env, serve
from tests.remote_support import eventually

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

# Each session leaves two escapees: a daemon in its own session (setsid -f), and a
# background process that ignores SIGHUP; then its main job runs until killed.
ESCAPE = (
    "setsid -f sh -c 'echo $$ > {d}/{n}-daemon.pid; exec sleep 300'; "
    "sh -c 'trap \\\"\\\" HUP; echo $$ > {d}/{n}-nohup.pid; exec sleep 300' & "
    "exec sleep 300"
)
DECK = """
[pool]
size = 2
warm = 1

[[session]]
name = "pooled"
command = "{pooled}"

[[session]]
name = "fresh"
terminal = "fresh"
command = "{fresh}"
"""
PIDS = ("pooled-daemon", "pooled-nohup", "fresh-daemon", "fresh-nohup")


def _deck(tmp_path: Path) -> Path:
    pids = tmp_path / "pids"
    pids.mkdir()
    commands = {name: ESCAPE.format(d=pids, n=name) for name in ("pooled", "fresh")}
    text = DECK.format(**commands)
    (tmp_path / "deck.toml").write_text(text)
    return tmp_path / "deck.toml"


async def _escapees(tmp_path: Path) -> list[int]:
    files = [tmp_path / "pids" / f"{name}.pid" for name in PIDS]
    await eventually(lambda: all(f.exists() and f.read_text().strip() for f in files), 30)
    return [int(f.read_text()) for f in files]


def _kill(pids: list[int]) -> None:
    for pid in pids:  # a failed test must not leave them to the next one
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("how", ["kill -9", "SIGTERM"])
async def test_no_process_a_session_started_survives_the_engine(tmp_path: Path, how: str) -> None:
    pids: list[int] = []
    try:
        with runtime_env() as env, serve(_deck(tmp_path), tmp_path / "run", env) as (_, server):
            pids = await _escapees(tmp_path)
            assert all(alive(pid) for pid in pids)
            server.send_signal(signal.SIGKILL if how == "kill -9" else signal.SIGTERM)
            await anyio.to_thread.run_sync(server.wait, 60)
            await eventually(lambda: not any(alive(pid) for pid in pids), 15)
    finally:
        _kill(pids)
