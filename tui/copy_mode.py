"""Copy mode in a pane's history: a cursor, a selection and the keys that move them.

Pure (no Textual): the pane (tui/widgets/terminal_pane.py) draws `span` and copies what
`rows` names; the keys are vi's, as in tmux's and zellij's copy modes:

    h j k l, arrows     move the cursor          v   select from here (characters)
    PageUp / PageDown   a page (also Ctrl-u/d)   V   select whole lines
    g / G               first / last line        y, Enter   copy, and leave copy mode
    0 / $               start / end of the line  Esc, q     leave without copying
"""

from __future__ import annotations

from dataclasses import dataclass

STEPS = {
    "j": (1, 0), "down": (1, 0), "k": (-1, 0), "up": (-1, 0),
    "h": (0, -1), "left": (0, -1), "l": (0, 1), "right": (0, 1),
}  # fmt: skip
PAGE_KEYS = {"pageup": -1, "ctrl+u": -1, "ctrl+b": -1, "pagedown": 1, "ctrl+d": 1, "ctrl+f": 1}
YANK_KEYS = frozenset({"y", "enter"})
CANCEL_KEYS = frozenset({"escape", "q"})


@dataclass
class CopyCursor:
    row: int
    """Index into the pane's frozen history (screen included)."""
    col: int
    anchor: tuple[int, int] | None = None
    """Where the selection started (row, col); None: nothing selected yet."""
    whole_lines: bool = False

    def select(self, whole_lines: bool) -> None:
        """`v` / `V`: start a selection here; the same key again drops it."""
        if self.anchor is not None and self.whole_lines == whole_lines:
            self.anchor = None
        else:
            self.anchor = self.anchor or (self.row, self.col)
            self.whole_lines = whole_lines

    def move(self, rows: int, cols: int, size: tuple[int, int]) -> None:
        """By `rows` and `cols`, kept within `size` (history lines, pane width)."""
        lines, width = size
        self.row = min(max(self.row + rows, 0), max(lines - 1, 0))
        self.col = min(max(self.col + cols, 0), max(width - 1, 0))

    def bounds(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """First and last (row, col) selected, in reading order (the cursor's alone if
        nothing is selected)."""
        here = (self.row, self.col)
        start, end = sorted((self.anchor or here, here))
        return start, end

    def span(self, row: int, width: int) -> tuple[int, int] | None:
        """The cells [start, end) of history row `row` that are selected, if any."""
        if self.anchor is None:
            return None
        (first, start), (last, end) = self.bounds()
        if not first <= row <= last:
            return None
        if self.whole_lines:
            return 0, width
        return (start if row == first else 0), (end + 1 if row == last else width)

    def rows(self, width: int) -> list[tuple[int, int, int]]:
        """(row, start, end) for each row to copy: the selection, or the cursor's line."""
        (first, _), (last, _) = self.bounds()
        return [(row, *(self.span(row, width) or (0, width))) for row in range(first, last + 1)]
