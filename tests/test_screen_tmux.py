"""What the screen keeps of a program's output equals what tmux keeps, for the sequences
swarmdeck handles in front of avt: DEL, DECALN, the title stack, a title in pieces."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import pytest

from tests.support import running, wait_text
from tests.tmux_support import tmux_server

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.anyio, pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux")]

LONG = "head -c 700 /dev/zero | tr '\\000' a; sleep 0.3; head -c 700 /dev/zero | tr '\\000' b"
SCRIPTS = {
    "delete": r"printf 'ab\177c\177\nd\177e\033[1\177mEND'",
    "alignment": r"printf '\033[2;3r\033[2;5H\033#8'; sleep 0.2; printf '\033[24;1H\nEND'",
    "title stack": r"printf '\033]2;one\007\033[22;2t\033]2;two\007'; sleep 0.2; "
    r"printf '\033[23;2tEND'",
    "title in pieces": rf"printf '\033]2;'; {LONG}; printf '\033\\END'",
}


@dataclass(frozen=True)
class Seen:
    lines: list[str]
    cursor: tuple[int, int]
    title: str


async def ours(tmp_path: Path, script: str) -> Seen:
    body = f"[[session]]\nname = \"s\"\nterminal = \"fresh\"\ncommand = '''{script}'''\n"
    async with running(tmp_path, body, pool="size = 1\nwarm = 0\ncols = 60\nrows = 24") as engine:
        await wait_text(engine, "s", "END")
        assert await engine.wait_finished()
        screen = engine.sessions["s"].screen
        cursor = screen.cursor
        return Seen(screen.text(), (cursor.row, cursor.col), screen.title)


def theirs(script: str) -> Seen:
    with tmux_server() as tmux:
        tmux.start(f"{script}; exec sleep 60", 60, 24)
        lines = tmux.wait_for(lambda lines: any("END" in line for line in lines))
        row, col = tmux.run("display-message", "-p", "#{cursor_y} #{cursor_x}").split()
        title = tmux.run("display-message", "-p", "#{pane_title}").rstrip("\n")
    lines = [line.rstrip() for line in lines] + [""] * (24 - len(lines))
    return Seen(lines, (int(row), int(col)), title)


@pytest.mark.parametrize("case", list(SCRIPTS))
async def test_the_screen_keeps_what_tmux_keeps(tmp_path: Path, case: str) -> None:
    script = SCRIPTS[case]
    seen = await ours(tmp_path, script)
    expected = await anyio.to_thread.run_sync(theirs, script)
    assert seen.lines == expected.lines
    assert seen.cursor == expected.cursor
    if case.startswith("title"):
        assert seen.title == expected.title
