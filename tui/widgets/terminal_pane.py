"""A live view of one session's screen: a Line-API ScrollView over engine screen data.

The pane never owns a process: it mirrors the engine's screen by revision (`pull`, called
by the grid's frame timer), keeps one strip per (row, line revision) and refreshes only
rows that changed. Scrolling back freezes a copy of the history, like tmux's copy mode;
the pane keeps its own history offset, so the virtual size always equals the pane size.
A session whose deck declares its size keeps it whatever the pane's size (the engine sees
to it): a smaller pane shows the part of the screen that holds the cursor, as tmux shows a
larger window; only a zoomed pane resizes it (deliberately), until it is unzoomed.
In history, `v` (tui/copy_mode.py) selects with keys and a mouse drag selects through
Textual's selection; both copy with `App.copy_to_clipboard` (OSC 52: over SSH too).
While focused, every key goes to the session (Esc and Esc Esc too: agents use them);
only the leave key (Ctrl-], `[keys] leave_pane`) leaves.

Size: one widget: paint, input, history and search of a pane; its pure parts are render.py
and key_encoding.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import anyio
from textual.binding import Binding, BindingType
from textual.geometry import Offset, clamp
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from engine import FINAL_STATES, SessionState, SwarmdeckError
from tui.actions import key_label
from tui.copy_mode import CANCEL_KEYS, PAGE_KEYS, STEPS, YANK_KEYS, CopyCursor
from tui.incidents import Guarded
from tui.key_encoding import encode_key, encode_mouse, encode_paste
from tui.render import Palette, highlight, line_strip, line_text

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
    from rich.style import Style as RichStyle
    from textual import events
    from textual.selection import Selection
    from textual.timer import Timer

    from engine import EngineAPI, ScreenSnapshot, StyledLine
    from tui.key_encoding import MouseAction

LEAVE_KEY = "ctrl+right_square_bracket"  # the default; [keys] leave_pane in config.toml rebinds it
LEAVE_KEYS = frozenset({LEAVE_KEY})
RESIZE_SETTLE = 0.1


class TerminalPane(Guarded, ScrollView, can_focus=True):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(LEAVE_KEY, "leave", "leaves", id="leave_pane"),  # the footer, typing; the
        # room's keymap rebinds it by that id, and names the key (ControlRoom.get_key_display)
    ]

    class Left(Message):
        """The operator left the pane with the chord."""

    class Clicked(Message):
        """The pane was clicked while not focused: select its session."""

        def __init__(self, session: str) -> None:
            super().__init__()
            self.session = session

    def __init__(
        self,
        engine: EngineAPI,
        session: str,
        palette: Palette,
        read_only: bool = False,
        leave_keys: frozenset[str] = LEAVE_KEYS,
    ) -> None:
        super().__init__(classes="terminal-pane")
        self.engine = engine
        self.read_only = read_only
        """A viewer's pane: no focus (no typing) and no resize; it renders the operator's size."""
        self.can_focus = not read_only
        self.session = session
        self.palette = palette
        info = engine.session_info(session)
        self.state = info.state
        self.attention = info.attention
        """Why the session waits for the operator (docs/attention.md); "" when it does not."""
        self._strips: dict[int, tuple[tuple[int, int], Strip]] = {}  # row: ((rev, left), strip)
        self._history: list[StyledLine] | None = None
        self._history_strips: dict[int, Strip] = {}
        self._top = 0
        self.match: tuple[int, int, int] | None = None
        self.copy_cursor: CopyCursor | None = None
        """Copy mode's cursor and selection (tui/copy_mode.py), in history only."""
        self.leave_keys = leave_keys
        self._mouse_held = False
        self._resize_timer: Timer | None = None
        self.zoomed = False
        """The operator zoomed this pane: its size is deliberate and overrides the deck's."""
        self._view = (0, 0)  # (top row, left column) of the screen the pane shows
        self._send: MemoryObjectSendStream[bytes] | None = None
        self._load(engine.screen_snapshot(session))

    # -- mirroring the engine's screen -----------------------------------------------------
    def _load(self, snap: ScreenSnapshot) -> None:
        self._lines = list(snap.lines)
        self._shape = (snap.cols, snap.rows)
        self._row_rev = [snap.revision] * snap.rows
        self._revision = snap.revision
        status = snap.status
        self._cursor = (status.cursor_row, status.cursor_col, status.cursor_visible)
        self.modes, self.title = status.modes, status.title
        self._strips.clear()
        self._view = self._view_origin()

    def _view_origin(self) -> tuple[int, int]:
        """Where a pane smaller than the screen starts: the least shift from the top left
        that keeps the cursor in view."""
        rows, cols = len(self._lines), self._shape[0]
        height, width = self.size.height, self.size.width
        row, col, _ = self._cursor
        top = min(max(row - height + 1, 0), max(rows - height, 0)) if height else 0
        left = min(max(col - width + 1, 0), max(cols - width, 0)) if width else 0
        return top, left

    def pull(self) -> None:
        """Apply the engine's changes since our revision; refresh only the rows that changed."""
        delta = self.engine.screen_delta(self.session, self._revision)
        if delta.revision == self._revision:
            return
        title = self.title
        if (delta.cols, delta.rows) != self._shape:
            self._load(self.engine.screen_snapshot(self.session))
            self.refresh()
            self.update_title()
        else:
            old_cursor = self._cursor[0]
            for row, line in delta.changed:
                self._lines[row] = line
                self._row_rev[row] = delta.revision
            self._revision = delta.revision
            status = delta.status
            self._cursor = (status.cursor_row, status.cursor_col, status.cursor_visible)
            self.modes, self.title = status.modes, status.title
            view, self._view = self._view, self._view_origin()
            if self._history is None and view != self._view:
                self.refresh()  # the cursor took a clipped view elsewhere
            elif self._history is None:
                rows = [row for row, _ in delta.changed]
                if self.has_focus:  # the cursor is drawn only while focused
                    rows += [old_cursor, self._cursor[0]]
                self._refresh_rows(rows)
        if self.title != title:
            self.update_title()

    def _refresh_rows(self, rows: list[int]) -> None:
        if len(rows) > self.size.height // 2:
            self.refresh()
            return
        top = self._view[0]
        for row in set(rows):
            if 0 <= row - top < self.size.height:
                self.refresh_line(row - top)

    def set_palette(self, palette: Palette) -> None:
        self.palette = palette
        self._strips.clear()
        self._history_strips.clear()
        self.refresh()

    def set_state(self, state: SessionState) -> None:
        self.remove_class(f"-state-{self.state}")
        self.state = state
        self.add_class(f"-state-{state}")
        self.update_title()

    def set_attention(self, reason: str) -> None:
        self.attention = reason
        self.set_class(bool(reason), "-attention")
        self.update_title()

    def update_title(self, focused: bool | None = None) -> None:
        """`focused`: from a Focus or Blur handler, which Textual runs before its own
        (Widget._on_focus), so `has_focus` may not say so yet."""
        focused = self.has_focus if focused is None else focused
        own = f" · {self.title}" if self.title else ""
        mark = f"● {self.attention} · " if self.attention else ""
        self.border_title = f"{mark}{self.session} · {self.state}{own}"
        if self.copy_cursor is not None:
            self.border_subtitle = "COPY · v V select · y copies · Esc cancels"
        elif self._history is not None:
            top = self._top + self.size.height
            self.border_subtitle = f"history {top}/{len(self._history)} · Esc: live · v: copy"
        elif self.state is SessionState.PAUSED:
            self.border_subtitle = "PAUSED · r resumes"
        elif focused:
            self.border_subtitle = f"TYPING · {key_label(min(self.leave_keys))} leaves"
        elif self._clipped():
            cols, rows = self._shape
            self.border_subtitle = f"{cols}x{rows} (deck), clipped · z zooms"
        else:
            self.border_subtitle = ""

    def _clipped(self) -> bool:
        """A declared size shown in a smaller pane (other sessions follow their pane)."""
        width, height = self.size
        if not (width and height and self.engine.session_info(self.session).declared_size):
            return False
        return self._shape[0] > width or self._shape[1] > height

    # -- Line API ---------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if self._history is not None:
            return self._history_line(self._top + y, width)
        top, left = self._view
        row = top + y
        if row >= len(self._lines):
            return Strip.blank(width, self.palette.base)
        key = (self._row_rev[row], left)
        cached = self._strips.get(row)
        if cached is None or cached[0] != key or cached[1].cell_length != width:
            strip = line_strip(self._lines[row], left + width, self.palette)
            cached = (key, strip.crop(left, left + width) if left else strip)
            self._strips[row] = cached
        cursor_row, col, visible = self._cursor
        if row == cursor_row and visible and self.has_focus:
            return highlight(cached[1], col - left, col - left + 1, self.palette.cursor)
        return cached[1]

    def _history_line(self, index: int, width: int) -> Strip:
        assert self._history is not None
        if index >= len(self._history):
            return Strip.blank(width, self.palette.base)
        strip = self._history_strips.get(index)
        if strip is None or strip.cell_length != width:
            strip = self._history_strips[index] = line_strip(
                self._history[index], width, self.palette
            )
        if self.match is not None and self.match[0] == index:
            strip = highlight(strip, self.match[1], self.match[2], self.palette.cursor)
        if (copy := self.copy_cursor) is not None:
            span = copy.span(index, width)
            if span is not None:
                strip = highlight(strip, *span, self._selection_style())
            if copy.row == index:
                strip = highlight(strip, copy.col, copy.col + 1, self.palette.cursor)
        elif (selection := self.text_selection) is not None:  # a mouse drag
            span = selection.get_span(index)
            if span is not None:
                end = width if span[1] == -1 else span[1]
                strip = highlight(strip, span[0], end, self._selection_style())
        return strip.apply_offsets(0, index)

    def _selection_style(self) -> RichStyle:
        return self.screen.get_component_rich_style("screen--selection")

    # -- history -----------------------------------------------------------------------------
    @property
    def in_history(self) -> bool:
        return self._history is not None

    def history_lines(self) -> list[StyledLine]:
        """Enter history mode if needed; the frozen history plus the screen it ended on."""
        if self._history is None:
            self._history = self.engine.history(self.session)
            self._history_strips.clear()
            self._top = max(len(self._history) - self.size.height, 0)
        return self._history

    def scroll_history(self, lines: int) -> None:
        """Scroll by `lines` (negative = back); reaching the end returns to the live screen."""
        if self._history is None and lines >= 0:
            return
        history = self.history_lines()
        bottom = max(len(history) - self.size.height, 0)
        target = self._top + lines
        if lines > 0 and target >= bottom:
            self.leave_history()
            return
        self._top = max(target, 0)
        self.refresh()
        self.update_title()

    def leave_history(self) -> None:
        self._history, self.match, self.copy_cursor = None, None, None
        self._history_strips.clear()
        self._top = 0
        self.refresh()
        self.update_title()

    # -- copying ----------------------------------------------------------------------------
    @property
    def allow_select(self) -> bool:
        """A mouse drag selects in history (live, the mouse may be the program's)."""
        return self._history is not None and self.copy_cursor is None

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        if self._history is None:
            return None
        text = "\n".join(line_text(line).rstrip() for line in self._history)
        return "\n".join(map(str.rstrip, selection.extract(text).split("\n"))), "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        self.refresh()

    def start_copy(self) -> None:
        """Copy mode: enter history if needed, the cursor where the screen's cursor is
        (or on the last line shown)."""
        history = self.history_lines()
        row = len(history) - len(self._lines) + self._cursor[0]
        bottom = self._top + self.size.height - 1
        in_view = self._top <= row <= bottom
        self.copy_cursor = CopyCursor(row if in_view else bottom, self._cursor[1] if in_view else 0)
        self.refresh()
        self.update_title()

    def copy_key(self, key: str, character: str | None) -> None:
        """A key while in copy mode (the session list hands every key here meanwhile)."""
        copy = self.copy_cursor
        if copy is None:
            return
        name = character if character and character.isprintable() else key
        history, width, height = self.history_lines(), self.size.width, self.size.height
        size = (len(history), width)
        if name in CANCEL_KEYS:
            self.copy_cursor = None
        elif name in YANK_KEYS:
            self.copy_cursor = None
            self._yank(copy, history, width)
        elif name in ("v", "V"):
            copy.select(whole_lines=name == "V")
        elif name in STEPS or key in PAGE_KEYS:
            rows, cols = STEPS.get(name) or (PAGE_KEYS[key] * max(height - 1, 1), 0)
            copy.move(rows, cols, size)
        elif name in ("g", "G"):
            copy.move(-copy.row if name == "g" else len(history), 0, size)
        elif name in ("0", "$"):
            end = len(line_text(history[copy.row]).rstrip()) - 1 if history else 0
            copy.col = 0 if name == "0" else max(end, 0)
        if self.copy_cursor is not None:
            self._top = min(max(self._top, copy.row - height + 1), copy.row)
        self.refresh()
        self.update_title()

    def _yank(self, copy: CopyCursor, history: list[StyledLine], width: int) -> None:
        texts = [
            line_strip(history[row], width, self.palette).crop(start, end).text.rstrip()
            for row, start, end in copy.rows(width)
        ]
        self.app.copy_to_clipboard("\n".join(texts))
        lines = f"{len(texts)} lines" if len(texts) != 1 else "1 line"
        self.notify(f"copied {lines} of {self.session}", timeout=3)

    def find(self, query: str, *, older: bool = True) -> bool:
        """Move to the next match of `query` (case-insensitive) older or newer than the last."""
        history, needle = self.history_lines(), query.lower()
        start = self.match[0] if self.match else len(history)
        order = range(start - 1, -1, -1) if older else range(start + 1, len(history))
        for index in order:
            col = line_text(history[index]).lower().find(needle)
            if col >= 0:
                self.match = (index, col, col + len(needle))
                bottom = max(len(history) - self.size.height, 0)
                self._top = min(max(index - self.size.height // 2, 0), bottom)
                self.refresh()
                self.update_title()
                return True
        return False

    # -- sizing --------------------------------------------------------------------------------
    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = event.size
        self._strips.clear()
        self._history_strips.clear()
        self._view = self._view_origin()
        self.update_title()
        if self._resize_timer is None:
            self._resize_timer = self.set_timer(RESIZE_SETTLE, self._apply_size, name="pane-resize")
        else:  # a drag or a burst of layouts: one PTY resize once the size settles
            self._resize_timer.reset()

    def set_zoomed(self, zoomed: bool) -> None:
        """Zooming is a deliberate size: the PTY follows the zoomed pane, and returns to
        the deck's size once unzoomed (the resize that follows says so)."""
        if zoomed != self.zoomed:
            self.zoomed = zoomed
            if self._resize_timer is None:
                self._resize_timer = self.set_timer(RESIZE_SETTLE, self._apply_size)

    def _apply_size(self) -> None:
        self._resize_timer = None
        width, height = self.size
        if width < 2 or height < 1 or self.state in FINAL_STATES or self.read_only:
            return

        # settled: no burst. A callable, not a coroutine: a worker cancelled before it
        # starts (the pane removed meanwhile) then leaves no coroutine never awaited.
        async def resize() -> None:
            await self._resize(width, height)

        # Textual types a callable's coroutine as Coroutine[None, None, T]; ours is the same.
        self.run_worker(resize, group="pane-resize")  # type: ignore[arg-type]

    async def _resize(self, width: int, height: int) -> None:
        try:
            await self.engine.resize(self.session, width, height, deliberate=self.zoomed)
        except SwarmdeckError as exc:  # e.g. the session ended meanwhile: say so, go on
            self.notify(f"{self.session}: resize refused: {exc}", severity="warning")

    # -- input -----------------------------------------------------------------------------------
    async def _deliver(self, outbox: MemoryObjectReceiveStream[bytes]) -> None:
        """The pane's one writer, so keystrokes reach the session in order."""
        try:
            with outbox:
                async for data in outbox:
                    try:
                        await self.engine.send_input(self.session, data)
                    except SwarmdeckError as exc:
                        self.notify(str(exc), severity="warning", markup=False)
        finally:
            if self._send is not None:
                self._send.close()

    def on_mount(self) -> None:
        self.add_class(f"-state-{self.state}")
        self.set_class(bool(self.attention), "-attention")
        self.update_title()
        self._send, outbox = anyio.create_memory_object_stream[bytes](10_000)
        self.run_worker(self._deliver(outbox), group="pane-input")

    def on_unmount(self) -> None:
        if self._send is not None:
            self._send.close()

    def send(self, data: bytes) -> None:
        if self._history is not None:
            self.leave_history()
        try:
            if self._send is not None:
                self._send.send_nowait(data)
        except anyio.WouldBlock:
            self.notify(
                f"{self.session}: input backlog full, dropped", severity="warning", markup=False
            )

    def action_leave(self) -> None:
        self.post_message(self.Left())

    async def on_key(self, event: events.Key) -> None:
        event.stop()
        event.prevent_default()
        self.type_key(event.key, event.character)

    def type_key(self, key: str, character: str | None) -> None:
        """One key for the session (or the chord that leaves, or history scrolling); also
        what the session list hands over for keys typed before the focus moved here. Esc and
        Esc Esc are the program's (agents use them to interrupt and rewind)."""
        if key in self.leave_keys:
            self.action_leave()
            return
        if key in ("shift+pageup", "shift+pagedown"):
            step = self.size.height - 1
            self.scroll_history(-step if key == "shift+pageup" else step)
            return
        data = encode_key(key, character, self.modes)
        if data:
            self.send(data)

    def on_paste(self, event: events.Paste) -> None:
        event.stop()
        if self.has_focus:
            self.send(encode_paste(event.text, self.modes))

    def on_focus(self) -> None:
        self.add_class("-typing")
        if self.modes.focus_events:
            self.send(b"\x1b[I")
        self.refresh_line(self._cursor[0])
        self.update_title(focused=True)

    def on_blur(self) -> None:
        self.remove_class("-typing")
        if self.modes.focus_events and self.state not in FINAL_STATES:
            self.send(b"\x1b[O")
        self.refresh_line(self._cursor[0])
        self.update_title(focused=False)

    # -- mouse -------------------------------------------------------------------------------------
    def _mouse(self, action: MouseAction, event: events.MouseEvent) -> bool:
        """Forward to the program if it asked for the mouse and the pane has focus."""
        if not self.has_focus or self.modes.mouse == "off" or self._history is not None:
            return False
        offset = event.get_content_offset(self)  # event.x/y count the border
        if offset is None and action != "release":
            return True  # on the border: not the program's screen
        if offset is None:  # a release still ends the press, at the nearest cell
            x, y = event.get_content_offset_capture(self)
            offset = Offset(clamp(x, 0, self.size.width - 1), clamp(y, 0, self.size.height - 1))
        top, left = self._view
        data = encode_mouse(
            action, event.button, offset.x + left, offset.y + top, self.modes,
            held=self._mouse_held, shift=event.shift, alt=event.meta, ctrl=event.ctrl,
        )  # fmt: skip
        if data:
            self.send(data)
        return True

    def focus_on_click(self) -> bool:
        """A click on a pane without focus selects its session (`Clicked`); Textual's
        default would focus it first, so that keys went to a session the list does
        not show as selected. Enter, as ever, is what types into it."""
        return False

    def on_mouse_down(self, event: events.MouseDown) -> None:
        event.stop()
        if not self.has_focus:
            self.post_message(self.Clicked(self.session))
            return
        self._mouse_held = True
        self._mouse("press", event)

    def on_mouse_up(self, event: events.MouseUp) -> None:
        self._mouse_held = False
        self._mouse("release", event)

    def on_mouse_move(self, event: events.MouseMove) -> None:
        self._mouse("motion", event)

    def _on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        event.prevent_default()
        if not self._mouse("wheel-up", event):
            self.scroll_history(-3)

    def _on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        event.prevent_default()
        if not self._mouse("wheel-down", event):
            self.scroll_history(3)
