"""The grid of live panes: auto layout for 1–9 visible sessions, paging beyond, zoom.

It owns the app's one frame timer (~30 Hz): screen updates only mark panes dirty, and each
frame pulls the dirty, visible panes (flooding ones at ~10 Hz, ~5 Hz while the operator
types, spread over frames; the focused one at once, and alone). The timer pauses when
nothing is dirty, so an idle room costs no wake-ups (per-pane timers cost ~1,000
callbacks/s at 16 panes). It also tells the engine which session the operator types into
(`focus`), so that session's output goes first at every stage in the engine
(docs/performance.md, fairness).
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import TYPE_CHECKING

from textual.containers import Container
from textual.widgets import Static

from engine import SwarmdeckError
from tui.incidents import Guarded
from tui.widgets.terminal_pane import LEAVE_KEYS, TerminalPane

if TYPE_CHECKING:
    from textual import events
    from textual.timer import Timer

    from engine import EngineAPI
    from tui.render import Palette

PAGE = 9
FRAME = 1 / 30
FLOOD_FRAME = 1 / 10
"""How often a *flooding* pane repaints: one whose screen changed on FLOOD_STREAK frames
in a row (its text scrolls past faster than anyone reads it, as tmux's output backoff
assumes). Its repaints are spread over frames, a few panes per frame: bench/ui.py's eight
1 MB/s floods cost ~20 ms of Textual compositing per frame when all repainted together,
and every key's echo queued behind that. Calm panes still repaint on the next frame."""
FLOOD_STREAK = 6
TYPING_FLOOD_FRAME = 1 / 5
"""While the operator types into a pane, flooding panes repaint at half that rate: their
repaints were most of the room's CPU (eight floods: ~80 pane renders/s), and on a small
machine that CPU is what the typed key's echo waits for."""
ECHO_ALONE = 0.025
"""No other pane is pulled this soon after the focused pane's echo, so the screen update
Textual makes next (≤ 1/60 s later) renders the echo alone, not the echo plus floods."""


def grid_shape(count: int) -> tuple[int, int]:
    """Columns and rows for `count` panes: 1, 2×1, 2×2, 3×2, 3×3."""
    if count <= 1:
        return 1, 1
    columns = math.ceil(math.sqrt(count))
    return columns, math.ceil(count / columns)


class PaneGrid(Guarded, Container):
    def __init__(
        self,
        engine: EngineAPI,
        palette: Palette,
        read_only: bool = False,
        leave_keys: frozenset[str] = LEAVE_KEYS,
    ) -> None:
        super().__init__(id="panes")
        self.engine = engine
        self.read_only = read_only
        self.leave_keys = leave_keys
        self.palette = palette
        self.panes: dict[str, TerminalPane] = {}
        self._dirty: dict[str, None] = {}
        self._streak: dict[str, int] = {}  # frames in a row a pane had changes
        self._pulled_at: dict[str, float] = {}
        self._echo_at = -math.inf  # when the focused pane last pulled an echo
        self._page_sessions: list[str] = []
        self.page = (0, 0)
        self._timer: Timer | None = None
        self._focus_wanted: str | None = None
        self._focus_told: str | None = None
        self._focus_sending = False

    def on_mount(self) -> None:
        self._timer = self.set_interval(FRAME, self._frame, pause=True, name="frame")

    # -- focus: the engine serves the typed-into session first ------------------------------
    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if isinstance(event.widget, TerminalPane):
            self._tell_focus(event.widget.session)

    def on_descendant_blur(self, event: events.DescendantBlur) -> None:
        if isinstance(event.widget, TerminalPane):
            self._tell_focus(None)

    def _tell_focus(self, session: str | None) -> None:
        if self.read_only:
            return
        self._focus_wanted = session
        if not self._focus_sending:
            self._focus_sending = True
            self.run_worker(self._send_focus(), group="pane-focus")

    async def _send_focus(self) -> None:
        """One sender, until the engine has the latest focus (a blur and a focus arrive
        together when the operator moves between panes)."""
        try:
            while self._focus_told != self._focus_wanted:
                name = self._focus_wanted
                with contextlib.suppress(SwarmdeckError):  # gone: nothing to serve first
                    await self.engine.focus(name)
                self._focus_told = name
        finally:
            self._focus_sending = False

    # -- frames -----------------------------------------------------------------------------
    def mark_dirty(self, session: str) -> None:
        pane = self.panes.get(session)
        if pane is not None and pane.has_focus:
            pane.pull()  # typing: paint the echo now, not a frame later (engine-paced)
            self._echo_at = time.monotonic()
        elif pane is not None:
            self._dirty[session] = None
            if self._timer is not None:
                self._timer.resume()

    def _frame(self) -> None:
        if not self._dirty:
            self._streak.clear()
            if self._timer is not None:
                self._timer.pause()
            return
        now = time.monotonic()
        self._streak = {name: self._streak.get(name, 0) + 1 for name in self._dirty}
        if now - self._echo_at < ECHO_ALONE:
            return  # the echo paints alone; what is dirty stays so for the next frame
        floods = [
            name
            for name in self._dirty
            if self._streak[name] >= FLOOD_STREAK and name in self._pulled_at
        ]
        typing = any(pane.has_focus for pane in self.panes.values())
        period = TYPING_FLOOD_FRAME if typing else FLOOD_FRAME
        due = sorted(
            (name for name in floods if now - self._pulled_at[name] >= period),
            key=self._pulled_at.__getitem__,
        )
        budget = math.ceil(len(floods) * FRAME / period)
        calm = [name for name in self._dirty if name not in floods]
        for name in calm + due[:budget]:
            del self._dirty[name]
            self._pulled_at[name] = now
            pane = self.panes.get(name)
            if pane is not None and pane.display:
                pane.pull()

    # -- layout -----------------------------------------------------------------------------
    async def show(self, sessions: list[str], selected: str | None, zoomed: bool) -> None:
        """Show the page of `sessions` that holds `selected`; only one pane when zoomed."""
        index = sessions.index(selected) if selected in sessions else 0
        page, pages = index // PAGE, max(math.ceil(len(sessions) / PAGE), 1)
        wanted = sessions[page * PAGE : (page + 1) * PAGE]
        self.page = (page, pages)
        if wanted != self._page_sessions:
            await self._remount(wanted)
        visible = [selected] if zoomed and selected in wanted else wanted
        self._layout(visible)
        for name, pane in self.panes.items():
            if name in visible and not pane.display:
                pane.pull()  # frames skip hidden panes: catch up with what changed meanwhile
            pane.display = name in visible
            pane.set_class(name == selected, "-selected")
            pane.set_zoomed(zoomed and name == selected)

    async def _remount(self, wanted: list[str]) -> None:
        self._streak.clear()  # new panes: none is flooding until it shows it
        self._pulled_at.clear()
        await self.remove_children()
        self.panes = {
            name: TerminalPane(self.engine, name, self.palette, self.read_only, self.leave_keys)
            for name in wanted
        }
        self._page_sessions = wanted
        if wanted:
            await self.mount_all(self.panes.values())
        else:
            await self.mount(Static("No sessions match the filter.", classes="empty"))

    def _layout(self, visible: list[str]) -> None:
        columns, rows = grid_shape(len(visible))
        self.styles.grid_size_columns = columns
        self.styles.grid_size_rows = rows
        spare = columns * rows - len(visible)
        for position, name in enumerate(visible):
            last = position == len(visible) - 1
            self.panes[name].styles.column_span = 1 + spare if last else 1

    def set_palette(self, palette: Palette) -> None:
        self.palette = palette
        for pane in self.panes.values():
            pane.set_palette(palette)
