"""`swarmdeck run --headless`: a second Ctrl-C kills at once, whatever the stop grace
(issue 20 item 13): the first one's graceful stop no longer holds up reading the next."""

from __future__ import annotations

import os
import signal
import subprocess
from typing import TYPE_CHECKING

import anyio
import pytest

from tests.adversarial.serve_support import alive, swarmdeck
from tests.remote_support import eventually

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

DECK = """
[pool]
size = 1
warm = 1

[[session]]
name = "stubborn"
command = "trap '' TERM; echo $$ > {pid}; exec sleep 300"
stop_grace = "300s"
"""


async def test_a_second_interrupt_kills_every_session_at_once(tmp_path: Path) -> None:
    pid_file = tmp_path / "stubborn.pid"
    (tmp_path / "deck.toml").write_text(DECK.format(pid=pid_file))
    args = ("run", str(tmp_path / "deck.toml"), "--headless", "--run-dir", str(tmp_path / "run"))
    run = swarmdeck(*args, env=dict(os.environ), stdout=subprocess.PIPE)
    assert run.stdout is not None
    try:
        await eventually(lambda: pid_file.exists() and bool(pid_file.read_text().strip()), 30)
        session = int(pid_file.read_text())
        run.send_signal(signal.SIGINT)
        while "stopping every session" not in await anyio.to_thread.run_sync(run.stdout.readline):
            pass
        assert alive(session)  # it ignores SIGTERM, and its grace is 300 s
        run.send_signal(signal.SIGINT)
        # Bounded well below the grace: without the fix this waits out all 300 s.
        code = await anyio.to_thread.run_sync(run.wait, 30)
        assert code == 130
        assert not alive(session)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        run.stdout.close()
