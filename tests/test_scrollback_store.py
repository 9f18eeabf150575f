"""History beyond avt's newest rows lives in the compact store, and reads as it did when avt
held all of it: the same lines and styles, every printed line exactly once, at every scroll
position, after any interleaving of feeds and compactions (and RIS, the alternate screen,
floods), while costing a fraction of avt's memory."""

from __future__ import annotations

import ctypes
import gc
import json
import os
import random
import re
import select
import time
from typing import TYPE_CHECKING

import anyio
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.screen import AVT_SCROLLBACK, DEFAULT_STYLE, Screen, Style, line_text
from engine.scrollback_store import BLOCK_LINES, ScrollbackStore
from engine.terminals.pty import open_pty, read_available, spawn_on_pty
from engine.terminals.terminal import base_env
from tests.support import running

if TYPE_CHECKING:
    from pathlib import Path

    from engine.screen import StyledLine

COLS, ROWS = 60, 12
NUMBER = re.compile(r"(?<!\d)\d{6}(?!\d)")
# A counter through every kind of row: 16/256/truecolor pens, wide and combining
# characters, rows that wrap (a long run of letters), erased tails, attributes.
COUNTER = r"""
long=$(printf 'abcdefghij%.0s' 1 2 3 4 5 6 7 8 9 10 11 12)
i=1
while [ $i -le {count} ]; do
  case $((i % 6)) in
    0) printf '\033[3%dm%06d\033[0m \033[1;48;5;%dmbold on 256\033[0m\n' \
         $((i % 8)) $i $((i % 256));;
    1) printf '\033[38;2;%d;%d;0m%06d\033[0m 漢字テスト wide, e\314\201 combined\n' \
         $((i % 256)) $((i * 7 % 256)) $i;;
    2) printf '%06d %s\n' $i "$long";;
    3) printf '\033[4;7m%06d\033[0m under inverse \033[9mstruck\033[0m\n' $i;;
    4) printf '%06d\033[K\n' $i;;
    5) printf '\033[2;3m%06d\033[0m faint italic %s\n' $i "${{long%????????????????????????}}";;
  esac
  i=$((i + 1))
done
"""


def pty_output(count: int) -> list[bytes]:
    """The chunks a real shell's counter arrives in through a real PTY."""
    master, slave = open_pty(COLS, ROWS)
    proc = spawn_on_pty(["bash", "-c", COUNTER.format(count=count)], slave, env=base_env())
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            select.select([master], [], [], 1.0)
            data, eof = read_available(master, 1 << 16)
            if data:
                chunks.append(data)
            if eof:
                break
    finally:
        os.close(master)
        proc.kill()
        proc.wait()
    assert proc.returncode is not None
    return chunks


def numbers(lines: list[StyledLine]) -> list[int]:
    return [int(n) for line in lines for n in NUMBER.findall(line_text(line))]


@pytest.mark.parametrize("count", [1500, 5000])
def test_a_pty_counter_reads_the_same_from_the_store_as_from_avt_alone(count: int) -> None:
    """1500 rows fit the history (every number is there); 5000 print ~6,700 rows, so the
    store also lets its oldest go. Compactions of every size land between feeds."""
    rng = random.Random(count)
    old = Screen(COLS, ROWS, 5000, avt_scrollback=None)
    new = Screen(COLS, ROWS, 5000)
    chunks = pty_output(count)
    for i, chunk in enumerate(chunks):
        old.feed(chunk)
        new.feed(chunk)
        if rng.random() < 0.3:
            new.compact(rng.choice([1, 7, BLOCK_LINES, None]))
        if i % max(len(chunks) // 6, 1) == 0:
            assert new.output() == old.output()
    reference = old.scrollback_lines(0, old.scrollback_size())
    assert new.scrollback_size() == len(reference) > AVT_SCROLLBACK
    for start in range(len(reference)):  # every scroll position, a screenful each
        assert new.scrollback_lines(start, ROWS) == reference[start : start + ROWS]
    seen = numbers(new.output())
    assert seen == list(range(seen[0], count + 1))
    if count == 1500:
        assert seen[0] == 1


def _lines(first: int, last: int) -> bytes:
    return b"".join(b"\x1b[3%dm%06d\x1b[0m row\r\n" % (n % 8, n) for n in range(first, last))


def _pair(scrollback: int = 500) -> tuple[Screen, Screen]:
    return Screen(30, 5, scrollback, avt_scrollback=None), Screen(30, 5, scrollback)


def _same(old: Screen, new: Screen) -> None:
    assert new.scrollback_size() == old.scrollback_size()
    assert new.output() == old.output()


def test_reset_forgets_the_stored_history_exactly_where_avt_forgets_its_own() -> None:
    old, new = _pair()
    old.feed(_lines(0, 300))
    new.feed(_lines(0, 300))
    new.compact()
    chunk = _lines(300, 400) + b"\x1bc" + _lines(400, 650)  # RIS mid-chunk
    old.feed(chunk)
    new.feed(chunk)
    _same(old, new)
    assert numbers(new.output())[0] == 400


def test_the_alternate_screen_hides_the_stored_history_and_gives_it_back() -> None:
    old, new = _pair()
    for screen in (old, new):
        screen.feed(_lines(0, 400) + b"\x1b[?1049h" + _lines(400, 450))
    new.compact()
    _same(old, new)
    assert new.scrollback_size() == 0
    for screen in (old, new):
        screen.feed(b"\x1b[?1049l" + _lines(450, 460))
    _same(old, new)
    assert new.scrollback_size() > AVT_SCROLLBACK


def test_a_flood_longer_than_the_history_keeps_its_newest_rows_unconverted_until_read() -> None:
    old, new = _pair(scrollback=300)
    flood = _lines(0, 5000)
    for start in range(0, len(flood), 4096):
        old.feed(flood[start : start + 4096])
        new.feed(flood[start : start + 4096])
    assert new.compact() == 0  # right after a flood that dropped rows: nothing converted
    _same(old, new)  # a read converts all that waits
    assert numbers(new.output()) == list(range(5000 - 300 - 5 + 1, 5000))


def test_a_resize_keeps_every_row_once_and_stored_rows_their_width() -> None:
    """avt reflows its own rows; rows in the store stay as printed, like xterm's history."""
    new = Screen(30, 5, 1000)
    new.feed(b"".join(b"%06d %s\r\n" % (n, b"x" * 40) for n in range(400)))  # rows wrap
    new.compact()
    stored = new.scrollback_size() - AVT_SCROLLBACK
    new.resize(20, 5)
    new.feed(b"".join(b"%06d %s\r\n" % (n, b"y" * 40) for n in range(400, 420)))
    lines = new.output()
    assert numbers(lines) == list(range(numbers(lines)[0], 420))
    assert {len(line_text(line)) for line in lines[: stored // 2]} == {30}
    assert {len(line_text(line)) for line in lines[-5:]} == {20}


def _rss() -> int:
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_a_full_coloured_history_costs_a_fraction_of_avt_s_memory() -> None:
    """5000 rows x 200 columns, a pen per word: ~24 MB a session held in avt alone. Fed in
    4 KiB reads with a compaction after each, as the engine's frames keep up with output
    slower than a flood (a flood's raw rows are freed after it, for the next to reuse)."""
    rng = random.Random(1)
    text = "".join(
        "".join(f"\x1b[38;5;{rng.randrange(256)};48;5;{rng.randrange(16)}m word" for _ in range(40))
        + "\x1b[0m\r\n"
        for _ in range(5200)
    )
    before = _rss()
    screens = []
    for _ in range(6):
        screen = Screen(200, 50)
        for start in range(0, len(text), 4096):
            screen.feed_text(text[start : start + 4096])
            screen.compact(BLOCK_LINES)
        screens.append(screen)
    per_session = (_rss() - before) / len(screens)
    assert screens[0].scrollback_size() == 5000
    assert per_session < 4 * 2**20, f"{per_session / 2**20:.1f} MB a session"


@pytest.mark.anyio
async def test_an_engine_session_s_history_is_its_recording_replayed_into_avt_alone(
    tmp_path: Path,
) -> None:
    """Through the engine: its frames compact the history; the scrollback and history
    queries then return what avt alone makes of the session's recorded output."""
    body = f"[[session]]\nname = \"counter\"\ncommand = '''{COUNTER.format(count=3000)}'''\n"
    pool = f"size = 1\nwarm = 0\ncols = {COLS}\nrows = {ROWS}"
    async with running(tmp_path, body, pool) as engine:
        assert await engine.wait_finished()
        screen = engine.sessions["counter"].screen
        with anyio.fail_after(60):
            while screen.unconverted_rows:
                await anyio.sleep(0.05)
        scrollback = engine.scrollback("counter")
        history = engine.history("counter")
    old = Screen(COLS, ROWS, 5000, avt_scrollback=None)
    for line in (tmp_path / "run" / "sessions" / "counter.cast").read_text().splitlines()[1:]:
        _, kind, data = json.loads(line)
        if kind == "o":
            old.feed_text(data)
    assert scrollback == old.scrollback_lines(0, old.scrollback_size())
    assert history == old.output()
    seen = numbers(history)
    assert seen == list(range(seen[0], 3001))


@settings(max_examples=300, deadline=None)
@example(  # a drop that starts inside the oldest block and runs past it
    capacity=300,
    steps=[("push", 200), ("compact", None), ("push", 150), ("compact", None), ("push", 100)],
)
@given(
    capacity=st.integers(0, 300),
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("push"), st.integers(0, 400)),
            st.tuples(st.just("compact"), st.sampled_from([None, 0, 1, 16, 64, 65])),
            st.tuples(st.just("read"), st.integers(-3, 320), st.integers(-1, 330)),
            st.tuples(st.just("clear")),
        ),
        max_size=40,
    ),
)
def test_the_store_keeps_the_newest_capacity_lines_through_any_steps(
    capacity: int, steps: list[tuple[object, ...]]
) -> None:
    """Blocks, the open block and raw lines, partly dropped, read back as one list."""
    styles = [Style(fg=n) for n in range(5)]
    store: ScrollbackStore[int] = ScrollbackStore(
        capacity, lambda n: ((f"{n:06d}", styles[n % 5]), (" x", DEFAULT_STYLE))
    )
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
            want = kept[max(start, 0) : max(start, 0) + max(count, 0)]
            assert [int(line[0][0]) for line in store.lines(start, count)] == want
        else:
            store.clear()
            kept = []
        assert len(store) == len(kept)
    assert store.lines(0, len(kept)) == [
        ((f"{n:06d}", styles[n % 5]), (" x", DEFAULT_STYLE)) for n in kept
    ]
