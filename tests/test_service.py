"""`swarmdeck serve` as a real process: clients come and go (even by SIGKILL), sessions stay."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest

from engine.remote.client import open_remote_engine
from engine.states import SessionState as S
from tests.remote_support import ROOT, eventually, screen_text, short_dir, wait_shows
from tests.remote_support import SURVIVOR_DECK as DECK

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.anyio


def _swarmdeck(*args: str, env: dict[str, str], **kwargs: object) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "tui.cli", *args]
    return subprocess.Popen(command, cwd=ROOT, env=env, text=True, **kwargs)  # type: ignore[call-overload, no-any-return]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str], subprocess.Popen[str]]]:
    """A `swarmdeck serve` process; stopped (SIGTERM) at the end if the test did not."""
    (tmp_path / "svc.toml").write_text(DECK)
    with short_dir() as runtime:
        env = {**os.environ, "SWARMDECK_RUNTIME_DIR": str(runtime)}
        args = ("serve", str(tmp_path / "svc.toml"), "--run-dir", str(tmp_path / "run"))
        server = _swarmdeck(*args, env=env, stdout=subprocess.PIPE)
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            assert "serving svc on" in line, line
            yield Path(line.rsplit(" on ", 1)[1].strip()), env, server
        finally:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
            server.wait(30)
            assert server.stdout is not None
            server.stdout.close()


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
