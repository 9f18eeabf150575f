"""The run directory as another local user, a second engine and a restarted one see it
(issue 20 items 7, 10, 11): private, held by one engine, and never overwritten."""

from __future__ import annotations

import os
import stat
import subprocess
from typing import TYPE_CHECKING

import anyio
import pytest

from engine.remote.remote_engine import open_remote_engine
from engine.states import SessionState as S
from tests.adversarial.serve_support import runtime_env, serve, swarmdeck
from tests.remote_support import eventually, wait_shows

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

DECK = """
[pool]
size = 1
warm = 1

[[session]]
name = "talker"
command = "echo start >> {starts}; touch {made}; seq 1 100; echo said-it; exec sleep 300"
"""


def _deck(tmp_path: Path) -> Path:
    text = DECK.format(starts=tmp_path / "starts", made=tmp_path / "made-by-session")
    (tmp_path / "deck.toml").write_text(text)
    return tmp_path / "deck.toml"


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _recorded(path: Path) -> bytes:
    return path.read_bytes() if path.exists() else b""


async def test_the_run_directory_and_every_file_the_engine_writes_are_private(
    tmp_path: Path,
) -> None:
    run = tmp_path / "run"
    with runtime_env() as env, serve(_deck(tmp_path), run, env) as (socket, _):
        async with open_remote_engine(socket) as engine:
            await wait_shows(engine, "talker", "said-it", 30)
            await engine.save_screen("talker")
    files = [p for p in run.rglob("*") if p.is_file() and not p.is_socket()]
    assert {"summary.json", "talker.cast", "talker.screen.txt", "talker.exit.json"} <= {
        p.name for p in files
    }
    assert _mode(run) == 0o700
    loose = {str(p.relative_to(run)): oct(_mode(p)) for p in files if _mode(p) & 0o077}
    assert loose == {}
    dirs = {str(p.relative_to(run)): oct(_mode(p)) for p in run.rglob("*") if p.is_dir()}
    assert all(not int(mode, 8) & 0o077 for mode in dirs.values()), dirs
    # The sessions' own files keep the user's umask: only the engine's are private.
    assert _mode(tmp_path / "made-by-session") == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


async def test_a_second_serve_of_a_live_run_directory_is_refused_before_it_touches_anything(
    tmp_path: Path,
) -> None:
    deck, run = _deck(tmp_path), tmp_path / "run"
    with runtime_env() as env, serve(deck, run, env) as (socket, _):
        async with open_remote_engine(socket) as engine:
            await wait_shows(engine, "talker", "said-it", 30)
            bus = os.stat(run / "bus" / "bus.sock")
            cast = run / "sessions" / "talker.cast"
            await eventually(lambda: b"said-it" in _recorded(cast))
            recorded = _recorded(cast)
            second = swarmdeck("serve", str(deck), "--run-dir", str(run), env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
            out, err = await anyio.to_thread.run_sync(second.communicate, None, 60)
            assert second.returncode == 1, (out, err)
            assert "in use by another engine" in err
            assert os.stat(run / "bus" / "bus.sock").st_ino == bus.st_ino
            assert _recorded(cast).startswith(recorded)
            assert (tmp_path / "starts").read_text() == "start\n"  # nothing started twice
            assert engine.session_info("talker").state is S.ACTIVE


async def test_restarting_after_kill_9_keeps_every_line_the_crashed_run_recorded(
    tmp_path: Path,
) -> None:
    deck, run = _deck(tmp_path), tmp_path / "run"
    first = run / "sessions" / "talker.cast"
    with runtime_env() as env:
        with serve(deck, run, env) as (_, server):
            await eventually(lambda: b"said-it" in _recorded(first), 30)
            server.kill()
            await anyio.to_thread.run_sync(server.wait, 30)
        recorded = first.read_bytes()
        with serve(deck, run, env) as (socket, _):
            async with open_remote_engine(socket) as engine:
                await wait_shows(engine, "talker", "said-it", 30)
                second = run / "sessions" / "talker.attempt-2.cast"
                await eventually(lambda: b"said-it" in _recorded(second))
                assert first.read_bytes() == recorded
    assert b"said-it" in recorded
