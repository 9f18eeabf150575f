"""`swarmdeck serve` as a real process: clients come and go (even by SIGKILL), sessions stay."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
import pytest

from engine.remote.remote_engine import open_remote_engine
from engine.states import SessionState as S
from tests.remote_support import ROOT, eventually, screen_text, short_dir, wait_shows
from tests.remote_support import SURVIVOR_DECK as DECK

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.anyio


def _swarmdeck(*args: str, env: dict[str, str], **kwargs: object) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "tui.cli", *args]
    return subprocess.Popen(command, cwd=ROOT, env=env, text=True, **kwargs)  # type: ignore[call-overload, no-any-return]


@contextmanager
def _serve(
    deck: Path, run_dir: Path, env: dict[str, str]
) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """A `swarmdeck serve` process and its socket; stopped (SIGTERM) at the end if the
    test did not."""
    args = ("serve", str(deck), "--run-dir", str(run_dir))
    server = _swarmdeck(*args, env=env, stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert "serving svc on" in line, line
        yield Path(line.rsplit(" on ", 1)[1].strip()), server
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        server.wait(30)
        assert server.stdout is not None
        server.stdout.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str], subprocess.Popen[str]]]:
    (tmp_path / "svc.toml").write_text(DECK)
    with short_dir() as runtime:
        env = {**os.environ, "SWARMDECK_RUNTIME_DIR": str(runtime)}
        with _serve(tmp_path / "svc.toml", tmp_path / "run", env) as (socket_path, server):
            yield socket_path, env, server


async def test_killing_a_client_leaves_sessions_running_and_reattach_sees_the_same_screen(
    served: tuple[Path, dict[str, str], subprocess.Popen[str]],
) -> None:
    socket_path, env, server = served
    async with open_remote_engine(socket_path) as first:
        await wait_shows(first, "survivor", "still-here")
        before = first.screen_snapshot("survivor").lines
    cli = [sys.executable, "-m", "tui.cli"]
    listing = await anyio.run_process([*cli, "ls"], cwd=ROOT, env=env)
    assert str(socket_path) in listing.stdout.decode()
    client = _swarmdeck("attach", "svc", "--headless", "--watch", env=env, stdout=subprocess.PIPE)
    assert client.stdout is not None
    assert client.stdout.readline().startswith("== survivor")
    client.kill()  # SIGKILL: no goodbye on the socket
    client.wait(10)
    client.stdout.close()
    async with open_remote_engine(socket_path, "viewer") as again:
        assert again.session_info("survivor").state is S.ACTIVE
        assert again.screen_snapshot("survivor").lines == before
        assert "still-here" in screen_text(again, "survivor")
    with anyio.fail_after(60):
        stop = await anyio.run_process([*cli, "stop", "svc"], cwd=ROOT, env=env, check=False)
    assert stop.returncode == 0, stop.stderr
    assert server.wait(30) in (0, 1)
    assert not socket_path.exists()


async def test_serve_stops_cleanly_on_sigterm(
    served: tuple[Path, dict[str, str], subprocess.Popen[str]],
) -> None:
    socket_path, _, server = served
    async with open_remote_engine(socket_path) as remote:
        await eventually(lambda: remote.session_info("survivor").state is S.ACTIVE)
        server.send_signal(signal.SIGTERM)
        with anyio.fail_after(30), remote.subscribe() as events:
            async for _ in events:  # ends when the engine closes the connection
                pass
    assert server.wait(30) in (0, 1)
    assert not socket_path.exists()


async def test_engines_whose_run_dirs_share_a_name_keep_their_own_sockets_and_stop_apart(
    tmp_path: Path,
) -> None:
    (tmp_path / "svc.toml").write_text(DECK)
    deck, first_run, second_run = (
        tmp_path / "svc.toml",
        tmp_path / "a" / "run",
        tmp_path / "b" / "run",
    )
    with short_dir() as runtime:
        env = {**os.environ, "SWARMDECK_RUNTIME_DIR": str(runtime)}
        with (
            _serve(deck, first_run, env) as (first_socket, first),
            _serve(deck, second_run, env) as (second_socket, second),
        ):
            assert first_socket != second_socket
            for socket_path, server in ((first_socket, first), (second_socket, second)):
                async with open_remote_engine(socket_path, "viewer") as remote:
                    assert remote.server_pid == server.pid
            cli = [sys.executable, "-m", "tui.cli"]
            with anyio.fail_after(60):
                stop = await anyio.run_process(
                    [*cli, "stop", str(first_run)], cwd=ROOT, env=env, check=False
                )
            assert stop.returncode == 0, stop.stderr
            assert first.wait(30) in (0, 1)
            assert second.poll() is None
            async with open_remote_engine(second_socket, "viewer") as remote:
                assert remote.run_dir == second_run
                assert remote.session_info("survivor").state is S.ACTIVE


async def test_attach_headless_into_a_closed_pipe_exits_quietly(
    served: tuple[Path, dict[str, str], subprocess.Popen[str]],
) -> None:
    socket_path, env, _ = served
    async with open_remote_engine(socket_path) as operator:
        await wait_shows(operator, "survivor", "still-here")
        args = ("attach", "svc", "--headless", "--watch")
        client = _swarmdeck(*args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert client.stdout is not None
        assert client.stderr is not None
        assert client.stdout.readline().startswith("== survivor")
        client.stdout.close()  # `| head -1`: the reader is gone
        await operator.pause("survivor")  # an event the watcher must print
        await operator.resume("survivor")
        with anyio.fail_after(30):
            while client.poll() is None:
                await anyio.sleep(0.05)
        stderr = client.stderr.read()
        client.stderr.close()
    assert client.returncode == 0, stderr
    assert stderr == ""


FIND_OR_START = """
import sys
from pathlib import Path
from engine.deck.spec import load_deck
from tui.cli.daemon import find_or_start
entry, started, _ = find_or_start(load_deck(Path(sys.argv[1])), None)
print(entry.run_id, entry.pid, started)
"""


def _together(command: list[str], cwd: Path, env: dict[str, str]) -> list[list[str]]:
    """Run `command` twice at once; each one's output, split into words."""
    runs = [
        subprocess.Popen(command, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE)
        for _ in range(2)
    ]
    return [run.communicate(timeout=60)[0].split() for run in runs]


async def test_two_runs_of_a_deck_started_together_share_one_engine(tmp_path: Path) -> None:
    deck = tmp_path / "svc.toml"
    deck.write_text(DECK)
    with short_dir() as runtime:
        env = {**os.environ, "SWARMDECK_RUNTIME_DIR": str(runtime), "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-c", FIND_OR_START, str(deck)]
        answers = await anyio.to_thread.run_sync(_together, command, tmp_path, env)
        pids = {int(pid) for _, pid, _ in answers}
        try:
            assert len({run_id for run_id, _, _ in answers}) == 1  # one engine, not two
            assert sorted(started for _, _, started in answers) == ["False", "True"]
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGTERM)
            await eventually(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in pids))


async def test_ctrl_c_ends_attach_watch_quietly_as_tail_f(
    served: tuple[Path, dict[str, str], subprocess.Popen[str]],
) -> None:
    """Killed by the signal, as `tail -f` is (the shell says 130), and nothing printed."""
    socket_path, env, _ = served
    args = ("attach", "svc", "--headless", "--watch")
    client = _swarmdeck(*args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert client.stdout is not None
    assert client.stderr is not None
    assert client.stdout.readline().startswith("== survivor")
    while not client.stdout.readline().startswith("-- attached"):
        pass
    client.send_signal(signal.SIGINT)
    with anyio.fail_after(30):
        while client.poll() is None:
            await anyio.sleep(0.05)
    stderr = client.stderr.read()
    client.stdout.close()
    client.stderr.close()
    assert stderr == ""
    assert client.returncode == -signal.SIGINT
    async with open_remote_engine(socket_path, "viewer") as remote:
        assert remote.session_info("survivor").state is S.ACTIVE


QUICK_DECK = '[pool]\nsize = 1\nwarm = 0\n\n[[session]]\nname = "quick"\ncommand = "echo done"\n'


async def test_serve_with_exit_when_done_ends_once_every_session_is_final(tmp_path: Path) -> None:
    deck = tmp_path / "svc.toml"
    deck.write_text('exit_when = "done"\n' + QUICK_DECK)
    with short_dir() as runtime:
        env = {**os.environ, "SWARMDECK_RUNTIME_DIR": str(runtime)}
        server = _swarmdeck("serve", str(deck), "--run-dir", str(tmp_path / "run"), env=env,
                            stdout=subprocess.PIPE)  # fmt: skip
        try:
            out, _ = await anyio.to_thread.run_sync(lambda: server.communicate(timeout=30))
        finally:
            if server.poll() is None:
                server.kill()
                server.communicate()
    assert server.returncode == 0
    assert "run over (succeeded); exit_when = done" in out
    assert (tmp_path / "run" / "summary.json").exists()


async def test_run_of_a_deck_whose_run_is_over_starts_a_new_run_and_leaves_the_old(
    tmp_path: Path,
) -> None:
    deck = tmp_path / "svc.toml"
    deck.write_text(QUICK_DECK)  # served with exit_when never: the run ends, the engine stays
    with short_dir() as runtime:
        env = {**os.environ, "SWARMDECK_RUNTIME_DIR": str(runtime), "PYTHONPATH": str(ROOT)}
        with _serve(deck, tmp_path / "old", env) as (socket_path, old):
            async with open_remote_engine(socket_path, "viewer") as remote:
                await eventually(lambda: remote.session_info("quick").state is S.COMPLETED)
            await eventually(lambda: any(
                '"finished": true' in entry.read_text() for entry in runtime.glob("*.json")
            ))  # fmt: skip
            command = [sys.executable, "-c", FIND_OR_START, str(deck)]
            found = await anyio.run_process(command, cwd=tmp_path, env=env)
            _, pid, started = found.stdout.decode().split()
            try:
                assert started == "True"
                assert int(pid) != old.pid
                assert old.poll() is None  # left as it is
            finally:
                os.kill(int(pid), signal.SIGTERM)
                await eventually(lambda: not os.path.exists(f"/proc/{pid}"))


async def test_attach_headless_shows_contention_and_the_fleet_commands_act_from_a_shell(
    served: tuple[Path, dict[str, str], subprocess.Popen[str]],
) -> None:
    socket_path, env, _ = served
    cli = [sys.executable, "-m", "tui.cli"]

    async def swarmdeck(*args: str) -> str:
        with anyio.fail_after(60):
            done = await anyio.run_process([*cli, *args], cwd=ROOT, env=env, check=False)
        assert done.returncode == 0, done.stderr
        return str(done.stdout.decode())

    async with open_remote_engine(socket_path, "viewer") as remote:
        await eventually(lambda: remote.session_info("survivor").state is S.ACTIVE)
        await eventually(lambda: len(remote.contention_history()) >= 2)
        listing = await swarmdeck("attach", "svc", "--headless")
        assert "contention: max_parallel 2 (fixed: max_parallel = 2 in the deck); running 1" in (
            listing
        )
        assert "  waiting" in listing
        assert "  wait p95" in listing
        assert "paused 1: survivor" in await swarmdeck("pause", "svc", "--match", "surv*")
        await eventually(lambda: remote.session_info("survivor").state is S.PAUSED)
        assert "resumed 1: survivor" in await swarmdeck("resume", "svc", "--match", "*")
        await eventually(lambda: remote.session_info("survivor").state is S.ACTIVE)
        assert "set to 1" in await swarmdeck("parallel", "1", "svc")
        await eventually(lambda: remote.contention_statistics().slots == 1)
        with anyio.fail_after(60):
            bad = await anyio.run_process(
                [*cli, "parallel", "many"], cwd=ROOT, env=env, check=False
            )
        assert bad.returncode == 1
        assert "max_parallel must be a whole number or 'auto', not 'many'" in bad.stderr.decode()
