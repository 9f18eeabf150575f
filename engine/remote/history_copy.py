"""A client's copy of one session's history, appended to by `history_since` replies.

Why: re-fetching a 5,000-line coloured history every second cost the serving engine
40-315 ms of its loop each time. Stored lines are numbered absolutely by the engine and
never change (engine/screen.py HistoryRead), so the copy keeps them and asks only for the
lines from `end` on; the tail (avt's newest rows, which reflow on resize, and the screen)
comes whole with each reply. The copy shows only what one reply made consistent: stored
lines up to that reply's `end`, then its tail, so no line is skipped or repeated where
they meet, even while a later page is still missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.remote.protocol import line_from_wire

if TYPE_CHECKING:
    from engine.screen import StyledLine


class HistoryCopy:
    def __init__(self) -> None:
        self.first = 0  # the absolute index of lines[0]
        self.lines: list[StyledLine] = []
        self._shown = 0  # the `end` of the last complete reply: stored lines shown stop here
        self._tail: list[StyledLine] | None = None  # None until a reply completes
        self._rows = 0
        self._alternate = False

    @property
    def end(self) -> int:
        """The index of the next stored line this copy lacks (what to ask from)."""
        return self.first + len(self.lines)

    @property
    def ready(self) -> bool:
        return self._tail is not None

    def apply(self, reply: dict[str, Any]) -> bool:
        """Take one reply; True when the copy reached the reply's `end` (it is current)."""
        start, new = reply["start"], [line_from_wire(line) for line in reply["lines"]]
        if not self.first <= start <= self.end:  # fell behind what is kept, or another screen
            self.first, self.lines = start, new
        else:
            del self.lines[start - self.first :]  # nothing, unless replies crossed
            self.lines += new
        if reply["first"] > self.first:  # the engine dropped these (its history cap)
            del self.lines[: reply["first"] - self.first]
            self.first = reply["first"]
        if self.end != reply["end"]:
            return False
        self._shown, self._rows = reply["end"], reply["rows"]
        self._tail = [line_from_wire(line) for line in reply["tail"]]
        self._alternate = reply["alternate"]
        return True

    def take_whole(self, reply: dict[str, Any]) -> None:
        """A protocol-6 `history` reply: every line, the screen's `rows` last."""
        lines = [line_from_wire(line) for line in reply["lines"]]
        cut = len(lines) - reply["rows"]
        self.first, self.lines, self._shown = 0, lines[:cut], cut
        self._tail, self._rows, self._alternate = lines[cut:], reply["rows"], False

    def history(self) -> list[StyledLine]:
        """Stored lines then the tail, as of the last complete reply (empty before one)."""
        if self._tail is None:
            return []
        stored = [] if self._alternate else self.lines[: max(self._shown - self.first, 0)]
        return stored + self._tail

    def scrollback(self) -> list[StyledLine]:
        """`history` without the screen's rows."""
        lines = self.history()
        return lines[: len(lines) - self._rows] if self._tail is not None else []
