"""What the screen handles in front of avt: the title stack, long titles in pieces, DEL,
DECALN; each split across feeds as a PTY may split it."""

from __future__ import annotations

import pytest

from engine.screen import Screen
from engine.screen_scan import TITLE_LIMIT, TITLE_STACK


def fed(*pieces: bytes, cols: int = 20, rows: int = 5) -> Screen:
    screen = Screen(cols, rows)
    for piece in pieces:
        screen.feed(piece)
    return screen


@pytest.mark.parametrize("which", [b"", b";0", b";2"])
def test_a_pushed_title_comes_back_when_popped(which: bytes) -> None:
    screen = fed(b"\x1b]2;shell\x07\x1b[22" + which + b"t\x1b]2;vim file\x07")
    assert screen.title == "vim file"
    screen.feed(b"\x1b[23" + which + b"t")
    assert screen.title == "shell"


def test_the_icon_name_stack_leaves_the_window_title_alone() -> None:
    screen = fed(b"\x1b]2;one\x07\x1b[22;1t\x1b]2;two\x07\x1b[23;1t")
    assert screen.title == "two"


def test_pops_past_the_bottom_of_the_stack_keep_the_title() -> None:
    assert fed(b"\x1b]2;a\x07\x1b[22t\x1b[23t\x1b[23t\x1b[23t").title == "a"


def test_the_title_stack_is_bounded_and_forgets_the_oldest() -> None:
    pushes = b"".join(b"\x1b]2;t%d\x07\x1b[22t" % i for i in range(TITLE_STACK + 5))
    screen = fed(pushes + b"\x1b[23t" * (TITLE_STACK + 5))
    assert screen.title == "t5"


def test_a_title_stack_sequence_split_across_feeds_is_recognised() -> None:
    assert fed(b"\x1b]2;a\x07\x1b[2", b"2;", b"2t\x1b]2;b\x07\x1b[23", b"t").title == "a"


def test_a_long_title_arriving_in_pieces_is_kept() -> None:
    screen = fed(b"\x1b]2;" + b"a" * 700, b"b" * 700, b"c" * 700 + b"\x1b", b"\\after")
    assert screen.title == "a" * 700 + "b" * 700 + "c" * 700
    assert screen.text()[0] == "after"


def test_a_title_longer_than_the_limit_keeps_its_start() -> None:
    screen = fed(b"\x1b]0;" + b"x" * TITLE_LIMIT, b"y" * 5000, b"\x07after")
    assert screen.title == "x" * TITLE_LIMIT
    assert screen.text()[0] == "after"


def test_delete_is_not_stored_as_a_character() -> None:
    screen = fed(b"ab\x7fc\x1b[1\x7fmd\x7f")
    assert screen.text()[0] == "abcd"
    assert screen.cursor.col == 4


def test_delete_inside_a_title_split_across_feeds_is_kept() -> None:
    assert fed(b"\x1b]2;a\x7f", b"b\x7fc\x07d\x7f").title == "a\x7fb\x7fc"


def test_screen_alignment_homes_the_cursor_and_resets_the_margins() -> None:
    screen = fed(b"\x1b[2;3r\x1b[2;5H\x1b#", b"8X", cols=6, rows=4)
    assert screen.text() == ["XEEEEE", "EEEEEE", "EEEEEE", "EEEEEE"]
    assert (screen.cursor.row, screen.cursor.col) == (0, 1)
    screen.feed(b"\x1b[4;1H\n")  # scrolls the whole screen, not the old 2-3 region
    assert screen.text()[0] == "EEEEEE"
