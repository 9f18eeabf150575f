"""Two sessions in a row on one pooled terminal: nothing of the first reaches the second."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from engine.states import SessionState as S
from engine.terminals.procs import process_state
from tests.support import running, wait_state
from tests.test_relay import _cast_text

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

ONE_TERMINAL = "size = 1\nwarm = 1"

MESSY = """
[[session]]
name = "messy"
command = '''
export LEAKED=yes; cd /; stty raw -echo; printf '\\033[?1049h\\033[?2004h\\033[?1000h'
printf 'first session secret'; sleep 1000 & echo $! > {pidfile}; sleep 0.5
'''

[[session]]
name = "clean"
command = '''
read -r -t 0.3 typed; echo "typed=[$typed]"; echo "leaked=[${{LEAKED:-}}]"; echo "cwd=$PWD"
stty -a | tr ' ' '\\n' | grep -xE -- '-?(icanon|echo)' | tr '\\n' ' '; echo
'''
"""


async def test_a_reused_terminal_starts_clean(tmp_path: Path) -> None:
    pidfile = tmp_path / "bg.pid"
    async with running(tmp_path, MESSY.format(pidfile=pidfile), ONE_TERMINAL) as engine:
        await wait_state(engine, "messy", S.ACTIVE)
        await anyio.sleep(0.1)
        await engine.send_input("messy", b"typed-for-the-first\r")  # never read by it
        await engine.wait_finished()
        messy, clean = engine.sessions["messy"], engine.sessions["clean"]
        assert messy.terminal is clean.terminal  # really the same PTY
        assert messy.screen.alternate
        text = "\n".join(clean.screen.text())
        assert "typed=[]" in text
        assert "leaked=[]" in text
        assert f"cwd={tmp_path}" in text
        assert "icanon echo" in text
        assert "secret" not in text
        assert not clean.screen.alternate
        assert not clean.screen.modes.bracketed_paste
        assert clean.screen.modes.mouse == "off"
        assert clean.state is S.COMPLETED
        background = int(pidfile.read_text())
        assert process_state(background) in ("", "Z")


def _a_then_b(command_a: str) -> str:
    """Session `a` runs `command_a` (a TOML basic string), then `b` prints 'first-of-b'."""
    return (
        f'[[session]]\nname = "a"\ncommand = "{command_a}"\n\n'
        '[[session]]\nname = "b"\ncommand = "printf \'first-of-b\'"\n'
    )


async def test_every_byte_of_a_session_lands_on_its_own_screen(tmp_path: Path) -> None:
    body = _a_then_b("seq 1 3000 | tail -n 3; printf 'last-of-a'")
    async with running(tmp_path, body, ONE_TERMINAL) as engine:
        await engine.wait_finished()
        a = "\n".join(engine.sessions["a"].screen.text())
        b = "\n".join(engine.sessions["b"].screen.text())
        assert "2998" in a
        assert "last-of-a" in a
        assert "first-of-b" not in a
        assert b.strip() == "first-of-b"
        cast_a = (tmp_path / "run" / "sessions" / "a.cast").read_text()
        assert "last-of-a" in cast_a
        assert "first-of-b" not in cast_a


async def test_the_next_job_may_start_while_the_last_ones_output_is_still_coming(
    tmp_path: Path,
) -> None:
    """The terminal takes its next job on the exit report, before the ended job's last
    bytes (a few hundred KiB still in the relay's pipe here) and its end marker are read:
    they still go to the ended session, its screen and its recording, and no further."""
    body = _a_then_b("head -c 3000000 /dev/zero | tr '\\\\0' x | fold -w 100; printf 'last-of-a'")
    async with running(tmp_path, body, ONE_TERMINAL) as engine:
        assert await engine.wait_finished()
        a, b = engine.sessions["a"], engine.sessions["b"]
        assert a.terminal is b.terminal
        assert "last-of-a" in "\n".join(a.screen.text())
        assert "\n".join(b.screen.text()).strip() == "first-of-b"
    sessions = tmp_path / "run" / "sessions"
    _, text_a, _ = _cast_text(sessions / "a.cast")
    assert text_a.count("x" * 100) == 30000  # every line of a's output was recorded
    assert text_a.endswith("last-of-a")
    _, text_b, _ = _cast_text(sessions / "b.cast")
    assert text_b == "first-of-b"
    assert (sessions / "a.screen.txt").read_text().rstrip().endswith("last-of-a")
