"""The control room: composes the widgets, routes engine messages, and owns selection.

What each action does lives in `tui.operations`; which keys exist and when they apply in
`tui.actions`; panes, list and panels in `tui.widgets`. Engine events arrive only through
`tui.bridge`.

Size: one Textual App subclass, so its message handlers and selection sit together; every
handler is a few lines that hand over to the modules above.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, ClassVar

import textual.screen
from textual.app import App
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header

from engine import LIVE_STATES
from themes import DEFAULT_THEME, STYLESHEETS, all_themes
from themes.derived import derived_variables
from tui.actions import (
    ACTIONS,
    BY_NAME,
    KEYMAP_NAMES,
    LEAVE_PANE,
    READ_ONLY,
    by_key,
    key_label,
    keys_of,
    why_not,
)
from tui.bridge import forward_events
from tui.commands import RoomCommands
from tui.fleet_actions import FleetOperations
from tui.incidents import Incidents
from tui.render import Palette
from tui.server_files import REFUSED, without_file_commands
from tui.widgets.bus_panel import BusPanel
from tui.widgets.pane_grid import PaneGrid
from tui.widgets.pool_panel import PoolPanel
from tui.widgets.session_list import SessionList

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import PurePath

    from textual import events
    from textual.app import ComposeResult, SystemCommand
    from textual.notifications import SeverityLevel
    from textual.screen import Screen
    from textual.theme import Theme

    from engine import EngineAPI
    from tui.attention_alert import AttentionAlert
    from tui.bridge import (
        AlertObserved,
        BusObserved,
        ContentionUpdated,
        ParallelismChanged,
        PoolUpdated,
        RunEnded,
        ScreenUpdated,
        SessionUpdated,
        StreamEnded,
    )
    from tui.screens.quit import QuitChoice
    from tui.widgets.terminal_pane import TerminalPane

PAINT_PERIOD = 1 / 120
"""Textual paints a dirty screen on its update timer's next tick, 1/TEXTUAL_FPS (1/60)
after the screen goes idle. A key's echo waits for that tick: bench/ui.py, 8 sessions x
1 MB/s, key p95 55-63 -> ~35 ms at 1/120, with the same frames painted and the same CPU.
Set on the module Textual reads it from at run time (not TEXTUAL_FPS: the engine's sessions
would inherit it); tests/test_tui_units.py fails if Textual stops using the name."""
textual.screen.UPDATE_PERIOD = PAINT_PERIOD  # type: ignore[misc]

GC_THRESHOLDS = (7_000, 20, 20)
"""Young collections less often once start-up is frozen out (see ControlRoom.on_mount)."""


class ControlRoom(FleetOperations):
    TITLE = "swarmdeck"
    CSS_PATH: ClassVar[list[str | PurePath]] = list(STYLESHEETS)
    COMMANDS = App.COMMANDS | {RoomCommands}
    HORIZONTAL_BREAKPOINTS = [(0, "-very-narrow"), (72, "-narrow"), (110, "-wide")]  # noqa: RUF012
    """Screen classes by width (Textual's): side panels shrink below 110 columns (layout.tcss)."""
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(a.key, a.action, a.label, show=a.show, id=a.action) for a in ACTIONS),
        Binding("escape", "live", "Live", show=False),
        Binding("n", "search_next(True)", "Next match", show=False),
        Binding("N", "search_next(False)", "Previous match", show=False),
        Binding("ctrl+p", "command_palette", "Palette", show=False),
        Binding("ctrl+q", "quit_room", "Quit", show=False),
    ]

    def __init__(
        self,
        engine: EngineAPI,
        *,
        redact: bool = False,
        theme: str = DEFAULT_THEME,
        read_only: bool = False,
        attached: bool = False,
        keys: Mapping[str, str] | None = None,
    ) -> None:
        """`attached`: the engine is served elsewhere (quitting may detach); `read_only`:
        a viewer, whose control keys are hidden (the engine refuses them anyway); `keys`:
        action name to key(s), over the table in tui.actions (config.toml's [keys])."""
        super().__init__()
        self.keymap = dict(keys or {})
        self.set_keymap({k: v for k, v in self.keymap.items() if k in KEYMAP_NAMES})
        self._by_key = by_key(self.keymap)
        self.leave_keys = frozenset(keys_of(LEAVE_PANE, self.keymap))
        self.engine = engine
        self.redact = redact
        self.read_only = read_only
        self.attached = attached
        self.zoomed = False
        for definition in all_themes():
            self.register_theme(definition)
        self.theme = theme
        self.palette = Palette(self.get_css_variables())

    def compose(self) -> ComposeResult:
        yield Header()
        yield SessionList(self.redact)
        with Horizontal(id="main"):
            yield PaneGrid(self.engine, self.palette, self.read_only, self.leave_keys)
            with Vertical(id="side"):
                yield PoolPanel()
                yield BusPanel(self.redact)
        yield Footer()

    def get_key_display(self, binding: Binding) -> str:
        """The leave key named as a person says it (`Ctrl-]`, or `Ctrl-B` once rebound)."""
        if binding.id == LEAVE_PANE.action:
            return key_label(binding.key)
        return super().get_key_display(binding)

    async def on_mount(self) -> None:
        self.sub_title = self.engine.deck.name
        if self.read_only:
            self.title = f"{self.TITLE} [{READ_ONLY.upper()}]"
            self.say("you can watch every session; control and typing are refused", title=READ_ONLY)
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        events = self.engine.subscribe()  # before the snapshot below: no event falls between
        sessions = self.query_one(SessionList)
        sessions.colours = self.get_css_variables()
        sessions.set_infos(self.engine.list_sessions())
        sessions.enter_types = self.start_typing
        if not self.redact:
            self.query_one(PoolPanel).seed(self.engine.contention_history())
        for event in self.engine.bus_history():  # what it missed: same log on every attach
            self.query_one(BusPanel).add_event(event)
        sessions.focus()
        await self.show_panes()
        self.run_worker(forward_events(events, self), name="bridge", group="bridge")
        self.set_interval(1.0, sessions.tick, name="run-time")
        # Start-up built most long-lived objects: freeze them out of collections, collect
        # young ones less often. bench/ui.py, 8 sessions x 1 MB/s: collections 90 -> 6 /s,
        # loop stall p99 114 -> 74 ms (115 -> 45 in a shorter run), RSS +2-6 MB; a full
        # collection of what the flood grew can still take ~100 ms (docs/performance.md).
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        self._room_built = True
        self.incidents = Incidents(self, self.engine.run_dir)  # from now on, errors are survived

    def on_unmount(self) -> None:
        self._room_built = False
        if self.incidents is not None:
            self.incidents.close()

    # -- engine messages -----------------------------------------------------------------------
    async def on_session_updated(self, message: SessionUpdated) -> None:
        if not self.room_ready:
            return
        info = self.engine.session_info(message.event.session)
        reshaped = self.session_list.update_info(info)
        pane = self.grid.panes.get(info.name)
        if pane is not None:
            pane.set_state(info.state)
            if pane.has_focus and info.state not in LIVE_STATES:
                self.stop_typing(f"{info.name} is {info.state}: typing ended")
        if reshaped:
            await self.show_panes()
        elif self.verdict:  # a restart or fork: the run is moving again
            self.show_verdict()
        self.refresh_bindings()

    def on_screen_updated(self, message: ScreenUpdated) -> None:
        if not self.room_ready:
            return
        self.grid.mark_dirty(message.session)

    def on_pool_updated(self, message: PoolUpdated) -> None:
        if not self.room_ready or self.redact:  # redact: fixed samples, see tui.showcase
            return
        self.screen_stack[0].query_one(PoolPanel).add_sample(message.sample)

    def on_contention_updated(self, message: ContentionUpdated) -> None:
        if not self.room_ready or self.redact:
            return
        panel = self.screen_stack[0].query_one(PoolPanel)
        panel.add_contention(message.sample)
        if any(spec.queue is not None for spec in self.engine.deck.sessions):
            panel.show_balance(self.engine.bus_statistics().balance)
        if self.engine.deck.hosts:
            self.watch_hosts(panel)

    def on_parallelism_changed(self, message: ParallelismChanged) -> None:
        event = message.event
        if self.room_ready and event.old != event.new:
            self.say(f"max_parallel {event.old} → {event.new}: {event.reason}")

    def on_alert_observed(self, message: AlertObserved) -> None:
        if self.room_ready:
            self.show_alert(message.event)

    def on_bus_observed(self, message: BusObserved) -> None:
        if not self.room_ready:
            return
        self.screen_stack[0].query_one(BusPanel).add_event(message.event)

    def on_run_ended(self, message: RunEnded) -> None:
        summary = f"; summary in {message.summary_path}" if message.summary_path else ""
        severity: SeverityLevel = "information" if message.ok else "warning"
        self.verdict = message.text
        self.say(f"{message.text}{summary}", severity=severity, timeout=30)
        self.show_verdict()

    def on_stream_ended(self, message: StreamEnded) -> None:
        if self.attached:  # the served engine stopped or dropped us: nothing left to show
            self.exit()

    # -- selection and focus ---------------------------------------------------------------------
    async def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id != "sessions":
            return
        await self.show_panes()
        self.refresh_bindings()

    async def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter (or a click) on a row: type into it when that applies. Quietly otherwise,
        as Enter's reason was already given by on_key."""
        focus = BY_NAME["focus_pane"]
        if event.data_table.id == "sessions" and not why_not(
            focus, self.selected_info(), self.read_only
        ):
            await self.action_focus_pane()

    def on_terminal_pane_left(self, message: TerminalPane.Left) -> None:
        self.session_list.typing_into = None  # left before the focus even moved there
        self.session_list.focus()

    def on_terminal_pane_clicked(self, message: TerminalPane.Clicked) -> None:
        names = self.session_list.shown()
        if message.session in names:
            self.session_list.move_cursor(row=names.index(message.session))
            self.session_list.focus()

    # -- availability: dimmed in the footer, explained when pressed ------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        known = BY_NAME.get(action)
        if self.typing and (known is not None or action == "command_palette"):
            return False  # the footer shows only how to leave the pane
        if known is not None and known.control and self.read_only:
            return False  # hidden from the footer; pressing it says why (on_key)
        if known is None or known.needs is None:
            return True
        return None if why_not(known, self.selected_info()) else True

    def on_key(self, event: events.Key) -> None:
        known = self._by_key.get(event.key)
        if known is None or self.screen is not self.screen_stack[0]:
            return
        reason = why_not(known, self.selected_info(), self.read_only)
        if reason and known.action == "focus_pane" and reason != READ_ONLY:
            self.hold_keys(reason, title=f"{known.label} unavailable")
        elif reason:
            self.say(reason, title=f"{known.label} unavailable", severity="warning")

    # -- nothing written on the serving machine from an attached room (tui/server_files.py) --
    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        commands = super().get_system_commands(screen)
        return without_file_commands(commands) if self.attached else commands

    def deliver_screenshot(
        self, filename: str | None = None, path: str | None = None, time_format: str | None = None
    ) -> str | None:
        if self.attached:
            self.say(REFUSED, severity="warning")
            return None
        return super().deliver_screenshot(filename, path, time_format)

    # -- themes ------------------------------------------------------------------------------
    def get_theme_variable_defaults(self) -> dict[str, str]:
        """Every theme on offer works: swarmdeck's variables follow the theme's colours
        where it does not define them (Textual's built-in themes)."""
        return derived_variables(self.current_theme, self.ansi_theme)

    def _theme_changed(self, theme: Theme) -> None:
        variables = self.get_css_variables()
        self.palette = Palette(variables)
        self.session_list.colours = variables
        self.session_list.rebuild()
        self.grid.set_palette(self.palette)


async def run_control_room(
    engine: EngineAPI,
    *,
    read_only: bool = False,
    theme: str = DEFAULT_THEME,
    keys: Mapping[str, str] | None = None,
    attention: AttentionAlert | None = None,
) -> QuitChoice | None:
    """The room on an attached engine (in-process or RemoteEngine) until the operator
    quits: returns how (detach, or stop everything), None when the engine went away."""
    room = ControlRoom(engine, read_only=read_only, attached=True, theme=theme, keys=keys)
    room.attention_alert = attention or room.attention_alert  # config.toml's [attention]
    await room.run_async()
    return room.quit_choice
