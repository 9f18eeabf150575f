"""What the engine keeps for ever or leaves behind (issue 20, item 14): attempt history,
and the sockets of engines killed with -9."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from engine.remote import runtime
from engine.sessions.history import KEEP, AttemptHistory
from engine.sessions.info import AttemptInfo
from engine.states import SessionState as S

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def _attempt(number: int) -> AttemptInfo:
    return AttemptInfo(
        number=number, state=S.FAILED, reason="exit 1", exit_code=1, signal=None,
        ready_at=100.0, started_at=101.0 + number, ended_at=103.0 + number,
        queue_wait=1.0, run_time=2.0,
    )  # fmt: skip


def test_a_session_retried_for_ever_keeps_a_bounded_history_with_exact_counts() -> None:
    history = AttemptHistory()
    for number in range(1, 10_001):
        history.append(_attempt(number))
    kept = history.kept()
    assert len(kept) == KEEP
    assert [kept[0].number, kept[1].number, kept[-1].number] == [1, 10_000 - KEEP + 2, 10_000]
    assert len(history) == 10_000
    assert (history.queue_wait, history.run_time) == (10_000.0, 20_000.0)
    assert history.first_started_at == 102.0


def test_ls_removes_the_sockets_and_entries_of_engines_that_were_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWARMDECK_RUNTIME_DIR", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    stale, orphan, live = tmp_path / "run-1.sock", tmp_path / "run-2.sock", tmp_path / "run-3.sock"
    starting = tmp_path / "run-4.sock"  # just bound by an engine that is starting: kept
    for path in (stale, orphan, starting):  # bound, then closed: what a killed engine leaves
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(path))
    old = time.time() - 2 * runtime.STALE_AFTER
    for path in (stale, orphan):
        os.utime(path, (old, old), follow_symlinks=False)
    entry = {"run_id": "run", "deck": "d", "run_dir": "/x", "socket": str(stale),
             "pid": int(dead.stdout), "started_at": 1.0}  # fmt: skip
    (tmp_path / "run-1.json").write_text(json.dumps(entry))
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(live))
        listening.listen()
        assert runtime.registrations() == []
        kept = sorted(p.name for p in tmp_path.iterdir())
        assert kept == ["run-3.sock", "run-4.sock"]  # the live one, and one being set up
