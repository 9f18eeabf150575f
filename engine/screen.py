"""The one door to the avt emulator: a terminal screen as typed, plain, serialisable data.

avt emulates fast but neither answers terminal queries nor tracks input modes, titles or
the active buffer, so one precompiled regex (`screen_scan`) scans the decoded stream for
exactly those, and for the few sequences avt gets wrong that a scan can correct.
Lines leave as runs of (text, Style), cached per line revision, so viewers pay only for
rows that changed (one object per cell cost ~2x more in a flooding pane).

Size: the only importer of avt (one typed façade per untyped library): styled runs,
revisions, modes and resizes stay with it; scanning is screen_scan.py.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, replace
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

# The package root re-exports without `as`, which mypy --strict treats as private.
from avt._avt import Cell, Color, Line, Pen, Vt

from engine.errors import InvalidCommandError
from engine.screen_scan import (
    AFTER_ALIGN,
    ANY,
    REPLIES,
    SCAN,
    Titles,
    notice,
    rings,
    size_report,
    unterminated,
    without_del,
)
from engine.scrollback_store import ScrollbackStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

MouseMode: TypeAlias = Literal["off", "x10", "normal", "button", "any"]
ColorValue: TypeAlias = int | str | None  # None = default, 0-255 indexed, "#rrggbb"


@dataclass(frozen=True, slots=True)
class Style:
    """One pen as plain data, comparable and hashable for renderer-side caches."""

    fg: ColorValue = None
    bg: ColorValue = None
    bold: bool = False
    faint: bool = False
    italic: bool = False
    underline: bool = False
    strikethrough: bool = False
    blink: bool = False
    inverse: bool = False

    def __reduce__(self) -> tuple[Callable[..., Style], tuple[ColorValue, ColorValue, int]]:
        """Pickled (the scrollback store's blocks) as colours and a flag mask, unpickled
        through a cache: a dataclass's own unpickling costs ~5 µs a run."""
        flags = sum(1 << i for i, name in enumerate(_STYLE_FLAGS) if getattr(self, name))
        return _unpickled_style, (self.fg, self.bg, flags)


_STYLE_FLAGS = ("bold", "faint", "italic", "underline", "strikethrough", "blink", "inverse")


@lru_cache(maxsize=16384)  # ~4 MB at most; a 256-colour fg x 16 bg page needs ~4,400
def _unpickled_style(fg: ColorValue, bg: ColorValue, flags: int) -> Style:
    return Style(fg, bg, *(bool(flags >> i & 1) for i in range(len(_STYLE_FLAGS))))


Run: TypeAlias = tuple[str, Style]
StyledLine: TypeAlias = tuple[Run, ...]
DEFAULT_STYLE = Style()


@dataclass(frozen=True, slots=True)
class TerminalModes:
    """Input modes the program asked for; the UI encodes keys, mouse and paste by them."""

    app_cursor: bool = False
    app_keypad: bool = False
    bracketed_paste: bool = False
    mouse: MouseMode = "off"
    mouse_sgr: bool = False
    focus_events: bool = False


@dataclass(frozen=True, slots=True)
class Cursor:
    row: int
    col: int
    visible: bool


@dataclass(frozen=True, slots=True)
class ScreenStatus:
    """What a screen shows besides its rows: the cursor, the title, the input modes the
    program asked for, and which buffer is up. Defined once, carried by every snapshot and
    delta (and sent as the wire fields `cursor`, `title`, `modes`, `alternate`)."""

    cursor_row: int = 0
    cursor_col: int = 0
    cursor_visible: bool = True
    title: str = ""
    modes: TerminalModes = TerminalModes()
    alternate: bool = False


@dataclass(frozen=True, slots=True)
class ScreenSnapshot:
    """Everything a late joiner needs to paint the screen from nothing."""

    cols: int
    rows: int
    revision: int
    lines: tuple[StyledLine, ...]
    status: ScreenStatus


@dataclass(frozen=True, slots=True)
class ScreenDelta:
    """Rows changed after a known revision, for viewers that already hold the rest."""

    revision: int
    cols: int
    rows: int
    changed: tuple[tuple[int, StyledLine], ...]
    status: ScreenStatus


@dataclass(frozen=True, slots=True)
class HistoryRead:
    """History from an absolute index, fixed at one instant, decoded piece by piece.

    Stored lines are numbered from the first the session's store ever took (`first` is the
    oldest still kept, `end` the next to come); they never change, so a client keeps them.
    The tail (avt's newest history rows, which reflow on resize, then the screen's rows) is
    always given whole. Taking one decodes nothing: each piece, called, decodes at most a
    block (engine/scrollback_store.py), so a server sends a big one between other work."""

    first: int
    end: int
    start: int  # the first stored line in `pieces` (`first` if the asker fell behind it)
    count: int  # stored lines in `pieces`: they reach `end` when start + count == end
    pieces: list[Callable[[], list[StyledLine]]]
    tail: list[Callable[[], list[StyledLine]]]
    rows: int  # the tail's last `rows` lines are the screen
    alternate: bool  # the stored lines are hidden now: the history is the tail alone


_FLAGS = {"1": "app_cursor", "2004": "bracketed_paste", "1004": "focus_events"}
_MOUSE: dict[str, MouseMode] = {"9": "x10", "1000": "normal", "1002": "button", "1003": "any"}
_ALTERNATE = frozenset({"47", "1047", "1049"})
# Leave the alternate screen, soft reset (DECSTR: charsets, pen, margins, origin, insert),
# then autowrap and a visible cursor, which avt's DECSTR leaves as they were.
_START_OVER = "\x1b[?1049l\x1b[!p\x1b[?7h\x1b[?25h"


def line_text(line: StyledLine) -> str:
    """A styled line's characters, without its styles."""
    return "".join(text for text, _ in line)


def _split(a: Cell, b: Cell) -> bool:
    return a.pen != b.pen


def _color(color: Color | None) -> ColorValue:
    if isinstance(color, Color.Indexed):
        return color[0]
    if isinstance(color, Color.RGB):
        return f"#{color[0]:02x}{color[1]:02x}{color[2]:02x}"
    return None


def _style(pen: Pen) -> Style:
    if pen.is_default():
        return DEFAULT_STYLE
    return Style(
        _color(pen.foreground),
        _color(pen.background),
        pen.bold,
        pen.faint,
        pen.italic,
        pen.underline,
        pen.strikethrough,
        pen.blink,
        pen.inverse,
    )


def _styled_by_cells(line: Line) -> StyledLine:
    """Runs of equal pens, cell by cell: the reference `_styled` must agree with (tests),
    ~12x slower since avt calls back into Python for every pair of cells."""
    text = line.text
    runs: list[Run] = []
    start = 0
    for chunk in line.chunks(_split):
        end = start + len(chunk)
        runs.append((text[start:end], _style(chunk[0].pen)))
        start = end
    return tuple(runs)


# avt renders a line in Rust as `Line("<text with a full SGR before every pen change>")`,
# Rust-escaped: parsing that is ~10x cheaper than `chunks` (~6 vs ~70 µs for 200 columns).
_REPR_ESC = "\\u{1b}"
_SGR_RUN = re.compile("\x1b\\[([0-9;:]*)m")
_RUST_ESCAPE = re.compile(r"\\(u\{([0-9a-f]+)\}|.)")
_RUST_CHARS = {"n": "\n", "r": "\r", "t": "\t", "0": "\0"}
_SGR_STYLES: dict[str, Style] = {}
_SGR_STYLES_MAX = 4096  # a truecolor gradient spells a new SGR per cell: start over past this
_WRAPPED = "\u23ce"


def _unescape(match: re.Match[str]) -> str:
    code = match[2]
    if code is not None:
        return chr(int(code, 16))
    return _RUST_CHARS.get(match[1], match[1])


def _styled(line: Line) -> StyledLine:
    """Runs of equal pens; like avt's `chunks`, without wide-char continuation cells."""
    body = repr(line)[6:-2].replace(_REPR_ESC, "\x1b")
    if "\\" in body:  # another escape (a backslash, a quote, a control character)
        body = _RUST_ESCAPE.sub(_unescape, repr(line)[6:-2])
    parts = _SGR_RUN.split(body)
    runs: list[Run] = [(parts[0], DEFAULT_STYLE)] if parts[0] else []
    for i in range(1, len(parts) - 1, 2):
        if parts[i + 1]:
            style = _SGR_STYLES.get(parts[i])
            if style is None:
                if len(_SGR_STYLES) >= _SGR_STYLES_MAX:
                    _SGR_STYLES.clear()
                style = _SGR_STYLES[parts[i]] = _sgr_style(parts[i])
            runs.append((parts[i + 1], style))
    text = line.text
    shown = "".join(run for run, _ in runs)
    if shown != text:
        if shown != text + _WRAPPED:  # a form we do not know: ask avt cell by cell
            return _styled_by_cells(line)
        last, style = runs.pop()  # a wrapped line: avt's repr marks it with a trailing ⏎
        if len(last) > 1:
            runs.append((last[:-1], style))
    return tuple(runs)


def _styled_lines(lines: list[Line]) -> list[StyledLine]:
    return list(map(_styled, lines))


def _sgr_style(params: str) -> Style:
    """The pen avt spelled as `0;...`: every attribute is set after the reset."""
    fields: dict[str, Any] = {}
    for param in params.split(";"):
        sub = param.split(":")
        head = sub[0]
        if head in ("38", "48"):
            key = "fg" if head == "38" else "bg"
            if sub[1:2] == ["5"]:
                fields[key] = int(sub[2])
            elif sub[1:2] == ["2"]:
                fields[key] = "#{:02x}{:02x}{:02x}".format(*map(int, sub[2:5]))
        elif head in _SGR_FLAGS:
            fields[_SGR_FLAGS[head]] = True
        elif head.isdigit():
            n = int(head)
            if 30 <= n <= 37 or 90 <= n <= 97:
                fields["fg"] = n - 30 if n < 90 else n - 82
            elif 40 <= n <= 47 or 100 <= n <= 107:
                fields["bg"] = n - 40 if n < 100 else n - 92
    return Style(**fields) if fields else DEFAULT_STYLE


_SGR_FLAGS = {
    "1": "bold",
    "2": "faint",
    "3": "italic",
    "4": "underline",
    "5": "blink",
    "7": "inverse",
    "9": "strikethrough",
}


AVT_SCROLLBACK = 100  # history rows avt keeps (reflowed on resize); older ones go compact


class Screen:
    """One session's emulated terminal, fed incrementally with raw PTY bytes.

    Of `scrollback` history rows, the newest `avt_scrollback` stay in avt; older ones move to
    a ScrollbackStore as avt evicts them (~24 bytes a cell in avt, a few a line there).
    `avt_scrollback=None` keeps all of them in avt (the old path, for benchmarks and tests)."""

    def __init__(
        self,
        cols: int,
        rows: int,
        scrollback: int = 5000,
        avt_scrollback: int | None = AVT_SCROLLBACK,
    ) -> None:
        kept = scrollback if avt_scrollback is None else min(scrollback, avt_scrollback)
        self._vt = Vt(cols, rows, scrollback_limit=kept)
        self._history: ScrollbackStore[Line] = ScrollbackStore(scrollback - kept, _styled)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._cols, self._rows = cols, rows
        self._tail = ""
        self._revision = 0
        self._row_rev = [0] * rows
        self._cache: list[tuple[int, StyledLine] | None] = [None] * rows
        self._scrollback_size = (-1, 0)
        self._titles = Titles()
        self._modes = TerminalModes()
        self._alternate = False
        self.signals: dict[str, str] = {}
        """What the program asked of the person since `take_signals`: "bell" (BEL outside
        any escape string) and "notify" (OSC 9 / 777, with its text), the last of each."""

    @property
    def cols(self) -> int:
        return self._cols

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def revision(self) -> int:
        return self._revision

    @property
    def title(self) -> str:
        return self._titles.current

    @property
    def modes(self) -> TerminalModes:
        return self._modes

    @property
    def alternate(self) -> bool:
        return self._alternate

    @property
    def cursor(self) -> Cursor:
        """Clamped to the last column: avt reports col == cols while a wrap is pending."""
        c = self._vt.cursor
        return Cursor(c.row, min(c.col, self._cols - 1), c.visible)

    def feed(self, data: bytes) -> bytes:
        """Emulate `data`; return the replies to write back to the PTY."""
        return self.feed_text(self._decoder.decode(data))

    def feed_text(self, text: str) -> bytes:
        """`feed` for a caller that already decoded the stream (incrementally, in order)."""
        if not text:
            return b""
        if "\x7f" in text:
            text = without_del(self._tail, text)
        before = (self._revision, self._status())
        scan = self._tail + text
        offset, done, end = len(self._tail), 0, 0
        replies: list[bytes] = []
        if "\x07" in text and rings(scan):
            self.signals["bell"] = ""
        for match in SCAN.finditer(scan) if ANY.search(scan) else ():
            end = match.end()
            if match["dsr"] == "6" or match["align"] or match["esc"] == "c":
                cut = max(end - offset, 0)  # acts on avt's state at this point
                self._feed_vt(text[done:cut])
                done = cut
                if match["align"]:
                    self._feed_vt(AFTER_ALIGN)
                elif match["dsr"]:
                    replies.append(self._cpr())
                else:  # RIS: avt forgot its history with the rest, and so does the store
                    self._history.clear()
                    self._apply(match)
            else:
                replies.append(self._apply(match))
        self._feed_vt(text[done:])
        self._tail = unterminated(scan, end)
        if self._revision == before[0] and self._status() != before[1]:
            self._touch(())
        return b"".join(replies)

    def take_signals(self) -> dict[str, str]:
        """The bell and notification seen since the last call (engine/sessions/attention.py)."""
        signals, self.signals = self.signals, {}
        return signals

    def start_over(self) -> None:
        """A new attempt begins on this screen: what the last one left (charset, wrap,
        origin, margins, pen, alternate screen, input modes, a split sequence) is reset;
        its text stays, for the operator to read."""
        self._decoder.reset()
        self._tail = ""
        self.feed_text(_START_OVER)
        self._titles.forget_stack()
        self._modes = TerminalModes()

    def resize(self, cols: int, rows: int) -> None:
        """avt reflows the screen and its own history rows; rows already in the store keep
        the width they were printed at (as in xterm, whose history never reflows)."""
        _, evicted = self._vt.resize(cols, rows)
        if evicted:
            self._history.push(evicted)
        self._cols, self._rows = cols, rows
        self._row_rev = [0] * rows
        self._cache = [None] * rows
        self._touch(range(rows))

    def changed_since(self, revision: int) -> list[int]:
        return [row for row, rev in enumerate(self._row_rev) if rev > revision]

    def line(self, row: int) -> StyledLine:
        cached = self._cache[row]
        if cached is not None and cached[0] == self._row_rev[row]:
            return cached[1]
        styled = _styled(self._vt[row])
        self._cache[row] = (self._row_rev[row], styled)
        return styled

    def snapshot(self) -> ScreenSnapshot:
        lines = tuple(self.line(row) for row in range(self._rows))
        return ScreenSnapshot(self._cols, self._rows, self._revision, lines, self._status())

    def delta(self, since: int) -> ScreenDelta:
        changed = tuple((row, self.line(row)) for row in self.changed_since(since))
        return ScreenDelta(self._revision, self._cols, self._rows, changed, self._status())

    def text(self) -> list[str]:
        return [line.text.rstrip() for line in self._vt.view()]

    def ansi(self) -> str:
        """avt's dump, with 8-bit CSI spelled as ESC [ so any terminal replays it."""
        return self._vt.dump().replace("\x9b", "\x1b[")

    def scrollback_size(self) -> int:
        """History rows above the screen (none on the alternate screen): the store's, then
        avt's, whose count is cached per revision because avt only offers a copy of every
        line it holds."""
        if self._scrollback_size[0] != self._revision:
            size = len(self._vt.lines()) - self._rows
            self._scrollback_size = (self._revision, size)
        return self._stored() + self._scrollback_size[1]

    def scrollback_lines(self, start: int, count: int) -> list[StyledLine]:
        """History rows, oldest first; `start` counts from the oldest kept line."""
        start, count = max(start, 0), max(count, 0)
        stored = self._stored()
        lines = self._history.lines(start, count) if start < stored else []
        if len(lines) < count:
            first = max(start - stored, 0)
            history = self._vt.lines()[: -self._rows]
            lines += [_styled(line) for line in history[first : first + count - len(lines)]]
        return lines

    @property
    def unconverted_rows(self) -> int:
        """History rows avt evicted that wait, raw, for `compact`."""
        return self._history.raw

    def compact(self, limit: int | None = None) -> int:
        """Convert up to `limit` of the history rows avt evicted into the compact store;
        return how many it converted (the engine calls this each frame within a time
        budget; reads convert all that waits first)."""
        return self._history.compact(limit)

    def history_read(self, index: int, count: int) -> HistoryRead:
        """Up to `count` stored lines from absolute `index` (or from the oldest kept, if it
        is gone), with the tail and screen as they are now (see HistoryRead)."""
        store = self._history
        if not 0 <= index <= store.end:
            raise InvalidCommandError(
                f"history start {index} is outside 0..{store.end} (the next line's index):"
                " indices only grow, so a copy from before is of another screen"
            )
        start = max(index, store.first)
        count = min(max(count, 0), store.end - start)
        avt = self._vt.lines()[: -self._rows]  # copies: they stay as they are now
        tail: list[Callable[[], list[StyledLine]]] = [
            partial(_styled_lines, avt[cut : cut + 64]) for cut in range(0, len(avt), 64)
        ]
        screen = [self.line(row) for row in range(self._rows)]
        tail.append(screen.copy)
        pieces = store.read(start, count)
        return HistoryRead(
            store.first, store.end, start, count, pieces, tail, self._rows, self._alternate
        )

    def output(self) -> list[StyledLine]:
        """History rows then the screen's, taken together: where they meet no line is
        skipped or repeated (a viewer stitching its own older screen to newer history would)."""
        history = self.scrollback_lines(0, self.scrollback_size())
        return history + [self.line(row) for row in range(self._rows)]

    def _stored(self) -> int:
        """History rows in the store; hidden, as avt's own, while the alternate screen is up."""
        return 0 if self._alternate else len(self._history)

    def _feed_vt(self, text: str) -> None:
        if text:
            changed, evicted = self._vt.feed_str(text)
            if evicted:  # each row avt drops from its history, exactly once, oldest first
                self._history.push(evicted)
            if changed:
                self._touch(changed)

    def _touch(self, rows: Iterable[int]) -> None:
        self._revision = revision = self._revision + 1
        row_rev = self._row_rev
        for row in rows:
            row_rev[row] = revision

    def _status(self) -> ScreenStatus:
        c = self.cursor
        return ScreenStatus(c.row, c.col, c.visible, self.title, self._modes, self._alternate)

    def _cpr(self) -> bytes:
        c = self.cursor
        return f"\x1b[{c.row + 1};{c.col + 1}R".encode()

    def _apply(self, match: re.Match[str]) -> bytes:
        kind = match.lastgroup
        if kind == "set":
            self._set_private(match["dec"], match["set"] == "h")
        elif kind == "title":
            self._titles.set(match["title"])
        elif kind == "notify":
            text = notice(match["notify"])
            if text is not None:
                self.signals["notify"] = text
        elif kind == "esc":
            self._escape(match["esc"])
        elif kind == "window":
            if match["window"] == "18":
                return size_report(self._cols, self._rows)
            self._titles.window_op(match["window"])
        elif kind is not None:  # dsr 5, da, version: the group's text is the key
            return REPLIES.get(match[kind], b"")
        return b""

    def _escape(self, final: str) -> None:
        if final == "c":
            self._modes, self._alternate = TerminalModes(), False
        else:
            self._modes = replace(self._modes, app_keypad=final == "=")

    def _set_private(self, params: str, on: bool) -> None:
        changes: dict[str, Any] = {}
        for param in params.split(";"):
            if param in _FLAGS:
                changes[_FLAGS[param]] = on
            elif param in _MOUSE:
                changes["mouse"] = _MOUSE[param] if on else "off"
            elif param == "1006" or (param in ("1005", "1015") and on):
                changes["mouse_sgr"] = on and param == "1006"
            elif param in _ALTERNATE and on != self._alternate:
                self._alternate = on
                self._touch(range(self._rows))
        if changes:
            self._modes = replace(self._modes, **changes)
