"""Behaviour of the Screen façade over avt: emulation, replies, modes, runs, revisions."""

from __future__ import annotations

import itertools
from importlib.metadata import version

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.screen import DEFAULT_STYLE, Screen, Style, TerminalModes

SWARMDECK = version("swarmdeck")


def fed(data: bytes, cols: int = 20, rows: int = 5) -> Screen:
    screen = Screen(cols, rows)
    screen.feed(data)
    return screen


def test_plain_text_appears_on_visible_lines() -> None:
    assert fed(b"hello\r\nworld").text() == ["hello", "world", "", "", ""]


def test_alternate_screen_leaves_primary_screen_intact() -> None:
    screen = fed(b"$ vim notes.txt\r\n")
    screen.feed(b"\x1b[?1049h\x1b[H\x1b[2J~ vim buffer ~")
    assert screen.alternate
    assert screen.text()[0] == "~ vim buffer ~"
    screen.feed(b"\x1b[?1049l")
    assert not screen.alternate
    assert screen.text()[0] == "$ vim notes.txt"


def test_utf8_character_split_across_feeds_is_joined() -> None:
    screen = Screen(20, 5)
    data = "naïve 世界".encode()
    for cut in (3, 4, 9):
        screen.feed(b"\r\x1b[2K" + data[:cut])
        screen.feed(data[cut:])
        assert screen.text()[0] == "naïve 世界"


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert fed(b"a\xffb").text()[0] == "a\ufffdb"


def test_cursor_position_report_reflects_cursor_at_query_point() -> None:
    screen = Screen(20, 5)
    reply = screen.feed(b"\r\nab\x1b[6ncdef\x1b[6n")
    assert reply == b"\x1b[2;3R\x1b[2;7R"


def test_cursor_position_query_split_across_feeds_is_answered() -> None:
    screen = Screen(20, 5)
    assert screen.feed(b"abc\x1b[6") == b""
    assert screen.feed(b"nxyz") == b"\x1b[1;4R"


@pytest.mark.parametrize(
    ("query", "reply"),
    [
        (b"\x1b[c", b"\x1b[?1;2c"),
        (b"\x1b[0c", b"\x1b[?1;2c"),
        (b"\x1b[>c", b"\x1b[>84;0;0c"),
        (b"\x1b[>0c", b"\x1b[>84;0;0c"),
        (b"\x1b[5n", b"\x1b[0n"),
        (b"\x1b[>q", b"\x1bP>|swarmdeck " + SWARMDECK.encode() + b"\x1b\\"),
        (b"\x1b[>0q", b"\x1bP>|swarmdeck " + SWARMDECK.encode() + b"\x1b\\"),
        (b"\x1b[18t", b"\x1b[8;5;20t"),
    ],
)
def test_device_attribute_and_status_queries_are_answered(query: bytes, reply: bytes) -> None:
    assert Screen(20, 5).feed(b"x" + query + b"y") == reply


def test_ordinary_output_needs_no_reply() -> None:
    assert Screen(20, 5).feed(b"\x1b[1;31mred\x1b[0m\x1b[2J\x1b[H") == b""


def test_private_modes_toggle_on_and_off() -> None:
    screen = fed(b"\x1b[?1h\x1b[?2004h\x1b[?1004h\x1b=\x1b[?1002;1006h")
    assert screen.modes == TerminalModes(
        app_cursor=True,
        app_keypad=True,
        bracketed_paste=True,
        mouse="button",
        mouse_sgr=True,
        focus_events=True,
    )
    screen.feed(b"\x1b[?1l\x1b[?2004l\x1b[?1004l\x1b>\x1b[?1002;1006l")
    assert screen.modes == TerminalModes()


@pytest.mark.parametrize(
    ("param", "mouse"), [("9", "x10"), ("1000", "normal"), ("1002", "button"), ("1003", "any")]
)
def test_mouse_tracking_modes_are_named(param: str, mouse: str) -> None:
    assert fed(f"\x1b[?{param}h".encode()).modes.mouse == mouse


def test_other_mouse_encoding_turns_sgr_encoding_off() -> None:
    assert not fed(b"\x1b[?1006h\x1b[?1015h").modes.mouse_sgr


def test_mode_sequence_split_across_feeds_is_recognised() -> None:
    screen = Screen(20, 5)
    screen.feed(b"text\x1b[?20")
    assert not screen.modes.bracketed_paste
    screen.feed(b"04h more")
    assert screen.modes.bracketed_paste
    assert screen.text()[0] == "text more"


def test_full_reset_clears_modes() -> None:
    screen = fed(b"\x1b[?2004h\x1b[?1000h\x1b=")
    screen.feed(b"\x1bc")
    assert screen.modes == TerminalModes()


def test_cursor_after_a_full_line_stays_on_the_screen() -> None:
    screen = fed(b"x" * 20)
    assert screen.cursor.col == 19
    assert screen.feed(b"\x1b[6n") == b"\x1b[1;20R"


def test_hidden_cursor_is_reported() -> None:
    assert not fed(b"\x1b[?25l").cursor.visible
    assert fed(b"\x1b[?25l\x1b[?25h").cursor.visible


@pytest.mark.parametrize("terminator", [b"\x07", b"\x1b\\"])
@pytest.mark.parametrize("code", [b"0", b"2"])
def test_osc_title_is_tracked(code: bytes, terminator: bytes) -> None:
    assert fed(b"\x1b]" + code + b";build \xe2\x9c\x93" + terminator).title == "build ✓"


def test_title_split_across_feeds_is_tracked() -> None:
    screen = Screen(20, 5)
    screen.feed(b"\x1b]0;long ti")
    screen.feed(b"tle\x1b")
    screen.feed(b"\\")
    assert screen.title == "long title"


def test_indexed_and_truecolor_come_out_exactly() -> None:
    screen = fed(b"\x1b[38;5;208;48;2;1;2;255mX\x1b[0mY")
    assert screen.line(0)[0] == ("X", Style(fg=208, bg="#0102ff"))
    assert screen.line(0)[1][1] == DEFAULT_STYLE


def test_basic_colours_are_indexed() -> None:
    assert fed(b"\x1b[31;102mX").line(0)[0][1] == Style(fg=1, bg=10)


def test_bold_and_inverse_are_separate_runs() -> None:
    runs = fed(b"\x1b[1mbold\x1b[0m \x1b[7minv\x1b[0m").line(0)
    assert runs[:3] == (
        ("bold", Style(bold=True)),
        (" ", DEFAULT_STYLE),
        ("inv", Style(inverse=True)),
    )


def test_wide_character_is_one_character_in_its_run() -> None:
    screen = fed(b"a\xe4\xb8\x96b", cols=6, rows=2)
    assert screen.line(0) == (("a世b  ", DEFAULT_STYLE),)
    assert screen.text()[0] == "a世b"


def test_only_changed_rows_are_reported() -> None:
    screen = fed(b"one\r\ntwo\r\nthree")
    before = screen.revision
    screen.feed(b"\x1b[2;1Hzwo")
    assert screen.revision > before
    assert screen.changed_since(before) == [1]
    assert [row for row, _ in screen.delta(before).changed] == [1]


def test_cursor_move_alone_advances_revision_without_changed_rows() -> None:
    screen = fed(b"abc")
    before = screen.revision
    screen.feed(b"\x1b[3;3H")
    assert screen.revision > before
    assert screen.changed_since(before) == []
    assert screen.delta(before).status.cursor_row == 2


def test_unchanged_lines_are_reused_from_cache() -> None:
    screen = fed(b"one\r\ntwo")
    first, second = screen.line(0), screen.line(1)
    screen.feed(b"\x1b[2;1HTWO")
    assert screen.line(0) is first
    assert screen.line(1) is not second
    assert screen.line(1)[0][0].startswith("TWO")


def test_resize_marks_every_row_changed() -> None:
    screen = fed(b"abc")
    before = screen.revision
    screen.resize(30, 8)
    assert (screen.cols, screen.rows) == (30, 8)
    assert screen.changed_since(before) == list(range(8))
    assert len(screen.snapshot().lines) == 8


def test_snapshot_holds_everything_a_late_joiner_needs() -> None:
    snap = fed(b"\x1b]2;job\x07\x1b[?2004hhi").snapshot()
    assert (snap.cols, snap.rows, snap.status.title, snap.status.alternate) == (20, 5, "job", False)
    assert snap.lines[0][0][0].startswith("hi")
    assert (snap.status.cursor_row, snap.status.cursor_col, snap.status.cursor_visible) == (
        0,
        2,
        True,
    )
    assert snap.status.modes.bracketed_paste


def test_scrollback_is_bounded_and_readable() -> None:
    screen = Screen(10, 3, scrollback=4)
    screen.feed(b"".join(b"line%d\r\n" % i for i in range(10)))
    assert screen.scrollback_size() == 4
    history = screen.scrollback_lines(0, 10)
    assert [line[0][0].rstrip() for line in history] == ["line4", "line5", "line6", "line7"]


def test_ansi_dump_replays_to_the_same_text() -> None:
    screen = fed(b"\x1b[1;32mgreen\x1b[0m\r\n\xe4\xb8\x96 wide")
    replay = fed(screen.ansi().encode())
    assert replay.text() == screen.text()
    assert "\x9b" not in screen.ansi()


_TOKENS = [
    b"\x1b[6n",
    b"\x1b[?1049h",
    b"\x1b[?1049l",
    b"\x1b[?1000;1006h",
    b"\x1b]0;t\x07",
    b"\x1b[1;38;5;99m",
    b"\x1b[48;2;1;2;3m",
    b"\x1b[0m",
    b"\x1b[2J",
    b"\x1b[3;4H",
    b"\r\n",
    "世界é".encode(),
    b"\x1bc",
]
_STREAMS = st.lists(st.one_of(st.binary(max_size=6), st.sampled_from(_TOKENS)), max_size=30)


@settings(max_examples=150, deadline=None)
@given(chunks=_STREAMS, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8))
def test_split_feeding_matches_whole_feeding(chunks: list[bytes], cuts: list[int]) -> None:
    data = b"".join(chunks)
    whole, split = Screen(12, 4, scrollback=10), Screen(12, 4, scrollback=10)
    replies = whole.feed(data)
    bounds = [0, *sorted(c for c in cuts if c < len(data)), len(data)]
    assert b"".join(split.feed(data[a:b]) for a, b in itertools.pairwise(bounds)) == replies
    assert split.text() == whole.text()
    assert split.snapshot().lines == whole.snapshot().lines
    assert (split.modes, split.title, split.alternate) == (
        whole.modes,
        whole.title,
        whole.alternate,
    )
    for row in range(split.rows):
        assert "".join(text for text, _ in split.line(row)).rstrip() == split.text()[row]


_PIECES = st.one_of(
    st.text(st.sampled_from("ab é世\\\"'⏎\t\x07{}u1"), min_size=1, max_size=8),
    st.sampled_from(
        [
            "\x1b[0m", "\x1b[1m", "\x1b[2m", "\x1b[3m", "\x1b[4m", "\x1b[5m", "\x1b[7m",
            "\x1b[9m", "\x1b[22m", "\x1b[31m", "\x1b[97m", "\x1b[44m", "\x1b[105m",
            "\x1b[38;5;200m", "\x1b[48;5;3m", "\x1b[38;2;1;2;255m", "\x1b[48;2;9;8;7m",
            "\r\n", "\x1b[5C", "\x1b[2D", "\x1b[K",
        ]
    ),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=40), st.integers(min_value=3, max_value=30))
def test_styled_runs_from_avts_rendering_match_its_cells(pieces: list[str], cols: int) -> None:
    """`_styled` parses avt's own rendering of a line (fast); it must give exactly the runs
    avt's cell-by-cell `chunks` gives, wrapped lines and escaped characters included."""
    from avt._avt import Vt

    from engine.screen import _styled, _styled_by_cells

    vt = Vt(cols, 4, scrollback_limit=50)
    vt.feed_str("".join(pieces))
    for line in vt.lines():
        assert _styled(line) == _styled_by_cells(line)
