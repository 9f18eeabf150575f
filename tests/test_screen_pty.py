"""Screens fed from real PTYs: query replies reach the program, floods do not starve others."""

from __future__ import annotations

from importlib.metadata import version
from typing import TYPE_CHECKING

import pytest

from engine.states import SessionState as S
from tests.support import running, wait_state, wait_text

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio


async def test_a_program_asking_for_the_cursor_position_gets_the_reply(tmp_path: Path) -> None:
    body = r"""
[[session]]
name = "asker"
command = '''
stty -icanon -echo; printf '\033[5;10H\033[6n'; IFS= read -r -t 5 -d R reply; stty sane
printf '\033[8;1Hreply=%s\n' "${reply#*[}"
printf '\033[c'; IFS= read -r -t 5 -d c da; echo "da=${da#*[}"
'''
"""
    async with running(tmp_path, body) as engine:
        await wait_text(engine, "asker", "reply=5;10")
        await wait_text(engine, "asker", "da=?1;2")
        assert await engine.wait_finished()


async def test_a_program_learns_who_the_terminal_is_and_its_size(tmp_path: Path) -> None:
    body = r"""
[[session]]
name = "asker"
command = '''
stty -icanon -echo
printf '\033[>c'; IFS= read -r -t 5 -d c da2
printf '\033[>0q'; IFS= read -r -t 5 -d '\' version
printf '\033[18t'; IFS= read -r -t 5 -d t size
stty sane
version="${version%?}"
echo "da2=${da2#*[}"; echo "version=${version#*P}"; echo "size=${size#*[}"; echo "stty=$(stty size)"
'''
"""
    async with running(tmp_path, body) as engine:
        await wait_text(engine, "asker", "stty=")
        screen = engine.sessions["asker"].screen
        assert await engine.wait_finished()
    text = "\n".join(screen.text())
    assert "da2=>84;0;0" in text
    assert f"version=>|swarmdeck {version('swarmdeck')}\n" in text  # ST's ESC cut off
    assert f"size=8;{screen.rows};{screen.cols}" in text
    assert f"stty={screen.rows} {screen.cols}" in text


async def test_a_flooding_session_does_not_starve_an_interactive_one(tmp_path: Path) -> None:
    body = r"""
[[session]]
name = "flood"
command = '''
yes "$(printf '\033[1;31mflood\033[0m \033[38;5;42mline\033[0m of text')" | head -c 50000000
'''

[[session]]
name = "echo"
command = "cat"
"""
    async with running(tmp_path, body) as engine:
        await wait_state(engine, "echo", S.ACTIVE)
        await wait_text(engine, "flood", "flood line of text")
        for i in range(5):
            await engine.send_input("echo", f"ping-{i}\r".encode())
            await wait_text(engine, "echo", f"ping-{i}")
        # every round trip finished while the 50 MB were still streaming
        assert engine.sessions["flood"].state is S.ACTIVE
        await wait_state(engine, "flood", S.COMPLETED, timeout=50)
        await engine.terminate("echo")
