"""History read by absolute index (what `history_since` sends an attached room): every
line keeps its index and content from the moment it is stored, a read decodes only the
blocks holding what it returns, and what a read took stays as it was while the session
goes on printing (so a server can encode it a piece at a time)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hypothesis import given, settings
from hypothesis import strategies as st

import engine.scrollback_store as store_module
from engine.screen import DEFAULT_STYLE, Screen, Style, line_text
from engine.scrollback_store import BLOCK_LINES, ScrollbackStore

if TYPE_CHECKING:
    from collections.abc import Callable

    import pytest

    from engine.screen import StyledLine

STYLES = [Style(fg=n) for n in range(5)]


def _line(n: int) -> tuple[tuple[str, Style], ...]:
    return ((f"{n:06d}", STYLES[n % 5]), (" x", DEFAULT_STYLE))


def _numbers(pieces: list[Callable[[], list[StyledLine]]]) -> list[int]:
    return [int(line[0][0]) for piece in pieces for line in piece()]


@settings(max_examples=300, deadline=None)
@given(
    capacity=st.integers(0, 300),
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("push"), st.integers(0, 400)),
            st.tuples(st.just("compact"), st.sampled_from([None, 0, 1, 16, 64, 65])),
            st.tuples(st.just("read"), st.integers(0, 2000), st.integers(0, 400)),
            st.tuples(st.just("clear")),
        ),
        max_size=40,
    ),
)
def test_a_line_keeps_its_absolute_index_until_it_is_dropped(
    capacity: int, steps: list[tuple[object, ...]]
) -> None:
    """`first` counts the lines ever dropped (capacity, clear), `end` those ever pushed;
    a read from any index returns the kept lines from there, in pieces of a block or less."""
    store: ScrollbackStore[int] = ScrollbackStore(capacity, _line)
    kept: list[int] = []
    printed = 0
    for step in steps:
        if step[0] == "push":
            new = list(range(printed, printed + int(str(step[1]))))
            printed += len(new)
            store.push(new)
            kept = (kept + new)[-capacity:] if capacity else []
        elif step[0] == "compact":
            store.compact(step[1] if step[1] is None else int(str(step[1])))
        elif step[0] == "read":
            start, count = int(str(step[1])), int(str(step[2]))
            pieces = store.read(start, count)
            assert _numbers(pieces) == [n for n in kept if start <= n < start + count]
            assert all(len(piece()) <= BLOCK_LINES for piece in pieces)
        else:
            store.clear()
            kept = []
        assert (store.first, store.end) == (printed - len(kept), printed)


def test_a_read_decodes_only_the_blocks_holding_the_lines_it_returns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store: ScrollbackStore[int] = ScrollbackStore(5000, _line)
    store.push(list(range(5000)))
    store.compact(force=True)  # 78 packed blocks, 8 open lines
    decoded = store_module._decoded
    decoded.clear()
    unpacked: list[bytes] = []
    unpack = store_module._unpack

    def counted(payload: bytes) -> list[StyledLine]:
        unpacked.append(payload)
        return unpack(payload)

    monkeypatch.setattr(store_module, "_unpack", counted)
    pieces = store.read(4900, 80)  # the last 80 packed lines: two blocks hold them
    assert not unpacked, "taking the pieces decodes nothing"
    assert _numbers(pieces) == list(range(4900, 4980))
    assert len(unpacked) == 2
    assert not decoded, "nor keeps what it decoded alive (a viewer paging does)"


def test_what_a_read_took_stays_as_it_was_while_output_goes_on() -> None:
    """Pieces hold packed blocks, copies of the open block's lines and raw lines: pushing
    past the capacity, compacting and clearing afterwards change none of them."""
    store: ScrollbackStore[int] = ScrollbackStore(300, _line)
    store.push(list(range(200)))
    store.compact(150)  # two packed blocks, 22 open lines, 50 raw
    pieces = store.read(store.first, 300)
    store.push(list(range(200, 900)))
    store.compact()
    store.clear()
    assert _numbers(pieces) == list(range(200))


def test_a_screen_s_history_read_is_its_output_line_for_line() -> None:
    """Stored lines from the first kept, then the tail (avt's rows, the screen): the same
    lines as `output`, also after the history cap dropped the oldest."""
    screen = Screen(40, 5, scrollback=300)
    screen.feed(b"".join(b"\x1b[3%dmline %05d\x1b[0m\r\n" % (n % 8, n) for n in range(1000)))
    read = screen.history_read(0, 10_000)
    assert read.start == read.first == 996 - 300  # 996 rows scrolled off, 300 are kept
    lines = [line for piece in read.pieces + read.tail for line in piece()]
    assert lines == screen.output()
    assert line_text(lines[-read.rows - 1]).startswith("line 00995")  # the screen: 996..999
