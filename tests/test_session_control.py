"""Pause, resume, terminate and timeouts act on real process groups."""

from __future__ import annotations

import json
import os
import signal
from typing import TYPE_CHECKING

import anyio
import pytest

from engine.engine import open_engine
from engine.errors import SessionError, UnknownSessionError
from engine.states import SessionState as S
from engine.terminals.procs import group_members, process_state
from tests.support import make_deck, running, wait_state, wait_text

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

FAMILY = """
[[session]]
name = "family"
command = "sleep 300 & sleep 300 & echo ready; wait"
terminal = "{terminal}"
"""


def _members(engine: object, name: str) -> list[int]:
    pid = engine.sessions[name].pid  # type: ignore[attr-defined]
    return group_members(pid)


@pytest.mark.parametrize("terminal", ["pooled", "fresh"])
async def test_pause_stops_every_process_of_the_group_and_resume_continues_them(
    tmp_path: Path, terminal: str
) -> None:
    async with running(tmp_path, FAMILY.format(terminal=terminal)) as engine:
        await wait_text(engine, "family", "ready")
        members = _members(engine, "family")
        assert len(members) == 3
        await engine.pause("family")
        assert engine.sessions["family"].state is S.PAUSED
        with anyio.fail_after(5):
            while {process_state(p) for p in members} != {"T"}:
                await anyio.sleep(0.01)
        await engine.resume("family")
        assert engine.session_info("family").state is S.ACTIVE
        with anyio.fail_after(5):
            while "T" in {process_state(p) for p in members}:
                await anyio.sleep(0.01)
        await engine.terminate("family")
        assert engine.session_info("family").state is S.TERMINATED
        assert all(process_state(p) in ("", "Z") for p in members)


async def test_pause_does_not_make_a_shell_print_stopped(tmp_path: Path) -> None:
    body = """
[[session]]
name = "sh"
command = ["bash", "--norc", "-i"]
env = { PS1 = "prompt$ " }
"""
    async with running(tmp_path, body) as engine:
        await wait_text(engine, "sh", "prompt$")
        await engine.send_input("sh", b"sleep 200\r")
        await anyio.sleep(0.3)
        await engine.pause("sh")
        await anyio.sleep(0.3)
        await engine.resume("sh")
        await anyio.sleep(0.3)
        assert not any("Stopped" in line for line in engine.sessions["sh"].screen.text())
        await engine.terminate("sh")


async def test_terminate_kills_a_grandchild_that_ignores_sigterm_after_the_grace(
    tmp_path: Path,
) -> None:
    body = """
[[session]]
name = "stubborn"
command = "bash -c 'trap \\"\\" TERM; echo up; while :; do sleep 0.05; done' & wait"
stop_grace = "300ms"
"""
    async with running(tmp_path, body) as engine:
        await wait_text(engine, "stubborn", "up")
        members = _members(engine, "stubborn")
        assert len(members) >= 2
        await engine.terminate("stubborn")
        session = engine.sessions["stubborn"]
        assert session.state is S.TERMINATED
        assert all(process_state(p) in ("", "Z") for p in members)


@pytest.mark.parametrize("terminal", ["pooled", "fresh"])
async def test_terminate_hangs_up_a_shell_at_its_prompt_instead_of_waiting_out_the_grace(
    tmp_path: Path, terminal: str
) -> None:
    """An interactive shell ignores SIGTERM; closing a terminal ends it with SIGHUP. Without
    the hang-up it would take the whole 60 s grace and then SIGKILL."""
    body = f"""
[[session]]
name = "shell"
command = "exec bash --norc --noprofile -i"
terminal = "{terminal}"
stop_grace = "60s"
"""
    async with running(tmp_path, body) as engine:
        await wait_text(engine, "shell", "bash-")
        await engine.terminate("shell")
        session = engine.sessions["shell"]
        assert session.state is S.TERMINATED
        assert session.exit is not None
        assert session.exit.signal == signal.SIGHUP


async def test_a_session_past_its_timeout_fails_with_the_reason(tmp_path: Path) -> None:
    body = """
[[session]]
name = "late"
command = "sleep 30"
timeout = "200ms"
"""
    async with running(tmp_path, body) as engine:
        await wait_state(engine, "late", S.FAILED)
        assert "timeout after 0.2s" in engine.sessions["late"].reason
        assert engine.sessions["late"].exit is not None


async def test_exit_status_decides_completed_or_failed(tmp_path: Path) -> None:
    body = """
[[session]]
name = "ok"
command = "true"

[[session]]
name = "bad"
command = "exit 7"

[[session]]
name = "killed"
command = "kill -KILL $$"
terminal = "fresh"
"""
    async with running(tmp_path, body) as engine:
        assert not await engine.wait_finished()
        assert engine.sessions["ok"].state is S.COMPLETED
        assert engine.sessions["bad"].state is S.FAILED
        assert engine.sessions["bad"].reason == "exit 7"
        assert engine.sessions["killed"].reason == "killed by SIGKILL"


async def test_terminating_a_queued_session_means_it_never_starts(tmp_path: Path) -> None:
    body = """
[[session]]
name = "first"
command = "sleep 30"

[[session]]
name = "second"
command = "echo never"
"""
    async with running(tmp_path, body, pool="size = 1\nwarm = 1") as engine:
        await wait_state(engine, "first", S.ACTIVE)
        await engine.terminate("second")
        assert engine.sessions["second"].state is S.TERMINATED
        assert engine.sessions["second"].pid is None
        await engine.terminate("first")


async def test_commands_that_do_not_apply_explain_why(tmp_path: Path) -> None:
    body = """
[[session]]
name = "quick"
command = "true"
"""
    async with running(tmp_path, body) as engine:
        await engine.wait_finished()
        with pytest.raises(SessionError, match="is completed; this needs active"):
            await engine.pause("quick")
        with pytest.raises(UnknownSessionError, match="known: quick"):
            await engine.pause("nope")


async def test_input_reaches_the_program(tmp_path: Path) -> None:
    body = """
[[session]]
name = "reader"
command = "read -r line; echo got:$line"
"""
    async with running(tmp_path, body) as engine:
        await wait_state(engine, "reader", S.ACTIVE)
        await engine.send_input("reader", b"hello\r")
        await wait_text(engine, "reader", "got:hello")
        assert await engine.wait_finished()


async def test_resize_changes_the_pty_size_and_sends_sigwinch(tmp_path: Path) -> None:
    body = """
[[session]]
name = "watcher"
command = "trap 'echo size $(stty size)' WINCH; echo ready; while :; do sleep 0.02; done"
"""
    async with running(tmp_path, body) as engine:
        await wait_text(engine, "watcher", "ready")
        await engine.resize("watcher", 100, 30)
        await wait_text(engine, "watcher", "size 30 100")
        assert engine.sessions["watcher"].screen.cols == 100
        await engine.terminate("watcher")


async def test_sessions_are_session_leaders_of_their_own_terminal(tmp_path: Path) -> None:
    body = """
[[session]]
name = "fresh"
command = "sleep 5"
terminal = "fresh"
"""
    async with running(tmp_path, body) as engine:
        await wait_state(engine, "fresh", S.ACTIVE)
        pid = engine.sessions["fresh"].pid
        assert pid is not None
        assert os.getsid(pid) == pid
        assert os.getpgid(pid) == pid
        await engine.terminate("fresh")
        assert engine.sessions["fresh"].exit is not None
        assert engine.sessions["fresh"].exit.signal == signal.SIGTERM


async def test_an_exception_in_the_engine_block_leaves_nothing_running(tmp_path: Path) -> None:
    body = """
[[session]]
name = "pooled"
command = "sleep 300"

[[session]]
name = "fresh"
command = "sleep 300 & sleep 300"
terminal = "fresh"
"""

    class Boom(Exception):
        pass

    async def crash_mid_run() -> None:
        async with running(tmp_path, body) as engine:
            await wait_state(engine, "pooled", S.ACTIVE)
            await wait_state(engine, "fresh", S.ACTIVE)
            raise Boom

    with pytest.raises(Boom):  # unwrapped: no ExceptionGroup for the caller to dig through
        await crash_mid_run()
    # the autouse leak guard checks that no process and no PTY is left


async def test_a_program_that_does_not_exist_fails_with_a_clear_message(tmp_path: Path) -> None:
    body = """
[[session]]
name = "typo"
command = ["no-such-program-xyz", "--flag"]
"""
    async with running(tmp_path, body) as engine:
        await engine.wait_finished()
        session = engine.sessions["typo"]
        assert session.reason == "exit 127"
        text = "\n".join(session.screen.text())
        assert "swarmdeck: cannot run no-such-program-xyz: No such file or directory" in text


async def test_a_session_that_cannot_start_records_its_first_attempt_as_attempt_1(
    tmp_path: Path,
) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    body = f"""
[[session]]
name = "orphan"
command = "true"
terminal = "fresh"
cwd = "{gone}"
"""
    deck = make_deck(tmp_path, body)
    gone.rmdir()  # valid when loaded, missing when the session starts
    async with open_engine(deck, tmp_path / "run") as engine:
        await engine.start_all()
        await engine.wait_finished()
        session = engine.sessions["orphan"]
        assert session.reason.startswith("could not start")
        assert [a.number for a in session.attempts] == [1]
    exits = sorted(p.name for p in (tmp_path / "run" / "sessions").glob("orphan*.exit.json"))
    assert exits == ["orphan.exit.json"]
    assert json.loads((tmp_path / "run" / "sessions" / exits[0]).read_text())["attempt"] == 1
