"""What the operator's actions do: engine commands with confirmation, dialogs and feedback.

Every action reports its outcome (a notification), and an engine refusal (wrong state,
unknown session, a fork that does not validate) is shown as the engine worded it.
`ControlRoom` (tui.app) supplies the widgets and the selection.

Size: one short method per operator action; the table of actions is actions.py.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from engine import FINAL_STATES, SwarmdeckError, fork_name
from tui.actions import BY_NAME, why_not
from tui.incidents import GuardedApp
from tui.screens.confirm import ConfirmScreen
from tui.screens.fork import ForkScreen
from tui.screens.help import HelpScreen
from tui.screens.quit import QuitScreen
from tui.screens.search import PromptScreen
from tui.widgets.pane_grid import PaneGrid
from tui.widgets.session_list import DECK_ORDER, SORTS, SessionList
from tui.widgets.terminal_pane import TerminalPane
from tui.wording import agreeing, counted

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from textual import events
    from textual.notifications import SeverityLevel

    from engine import EngineAPI, SessionInfo
    from tui.screens.quit import QuitChoice


class Operations(GuardedApp):
    engine: EngineAPI
    read_only: bool
    attached: bool
    quit_choice: QuitChoice | None = None
    """How the person quit: detach or stop (None while running, or the engine went away)."""
    zoomed: bool
    _query = ""
    _room_built = False
    verdict = ""
    """The last verdict the engine reported (`run over: ...`), shown in the header."""

    # -- selection and widgets -------------------------------------------------------------------
    @property
    def grid(self) -> PaneGrid:
        return self.screen_stack[0].query_one(PaneGrid)

    @property
    def session_list(self) -> SessionList:
        return self.screen_stack[0].query_one(SessionList)

    @property
    def room_ready(self) -> bool:
        """False while the room is being built or torn down (engine messages still arrive):
        flags, not a DOM query, since every engine message asks. Shutdown clears
        `is_running` before it removes the screens."""
        return self._room_built and self.is_running

    @property
    def selected(self) -> str | None:
        """The list's cursor row, read directly: keys queued behind a cursor move must act
        on the new selection, not on the one a pending RowHighlighted message would set."""
        return self.session_list.selected

    def selected_info(self) -> SessionInfo | None:
        return self.engine.session_info(self.selected) if self.selected else None

    def selected_pane(self) -> TerminalPane | None:
        return self.grid.panes.get(self.selected or "")

    async def show_panes(self) -> None:
        grid = self.grid
        await grid.show(self.session_list.shown(), self.selected, self.zoomed)
        self.engine.watch_history(self.selected)
        page, pages = grid.page
        paging = f" · page {page + 1}/{pages}" if pages > 1 else ""
        zoom = " · zoomed" if self.zoomed else ""
        self.sub_title = f"{self.engine.deck.name}{paging}{zoom}{self._view_terms()}"
        self.show_verdict()

    def _view_terms(self) -> str:
        """The sort and filter while set, so a short list is never a mystery."""
        listing = self.session_list
        order = f" · sorted by {listing.ordering}" if listing.ordering != DECK_ORDER else ""
        shown = f" · filter {listing.filter.strip()!r}" if listing.filter.strip() else ""
        return order + shown

    def show_verdict(self) -> None:
        """The header says how the run ended until a session moves again."""
        moving = any(i.state not in FINAL_STATES for i in self.engine.list_sessions())
        if self.verdict and moving:
            self.verdict = ""
        base = self.sub_title.split(" · run over")[0]
        self.sub_title = f"{base} · {self.verdict}" if self.verdict else base

    @property
    def typing(self) -> bool:
        """A pane has focus: every key goes to its session."""
        return isinstance(self.focused, TerminalPane)  # asked per binding: kept cheap

    def start_typing(self) -> TerminalPane | None:
        """Enter on the list: the pane typing starts in when that applies (its session is
        live, the room an operator's), focused; the list hands it the keys queued behind
        Enter. None otherwise (on_key says why)."""
        if why_not(BY_NAME["focus_pane"], self.selected_info(), self.read_only):
            return None
        pane = self.selected_pane()
        if pane is not None:
            pane.focus()
        return pane

    def stop_typing(self, why: str) -> None:
        """Back to the session list, holding the keys still being typed for the session."""
        self.session_list.typing_into = None
        self.session_list.focus()
        self.hold_keys(why)

    def hold_keys(self, why: str, title: str = "") -> None:
        self.session_list.hold.start()
        pause = f"{self.session_list.hold.seconds:g} s"
        note = f"{why}. Keys typed now are ignored until you pause for {pause} (Esc: now)"
        self.say(note, title=title, severity="warning")

    # -- plumbing ------------------------------------------------------------------------------
    def say(
        self,
        text: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
    ) -> None:
        """A notification of plain text: session names and engine errors are not markup."""
        self.notify(text, title=title, severity=severity, markup=False, timeout=timeout)

    def _target(self, action: str, session: str | None = None) -> SessionInfo | None:
        """The session an action applies to, or None after explaining why not."""
        name = session or self.selected
        info = self.engine.session_info(name) if name else None
        reason = why_not(BY_NAME[action], info, self.read_only)
        if reason:
            self.say(reason, title=f"{BY_NAME[action].label} unavailable", severity="warning")
            return None
        return info

    def _engine_call(
        self, done: str | Callable[[object], str], call: Callable[[], Awaitable[object]]
    ) -> None:
        """Run one engine command; the operator hears that it was done, or why it was not."""

        async def run() -> None:
            try:
                result = await call()
            except SwarmdeckError as exc:
                self.say(str(exc), title="engine refused", severity="error")
            else:
                self.say(done if isinstance(done, str) else done(result))

        self.run_worker(run(), group="engine-commands")

    async def run_session_action(self, action: str, session: str) -> None:
        """Palette entry point: the same actions as the keys, for any session."""
        result = getattr(self, f"action_{action}")(session)
        if inspect.isawaitable(result):
            await result

    async def run_view_action(self, action: str) -> None:
        result = getattr(self, f"action_{action}")()
        if inspect.isawaitable(result):
            await result

    async def pane_of(self, session: str) -> TerminalPane | None:
        """`session`'s pane, selecting the session first when another one is selected
        (its pane may be on another page, or hidden by zoom); None after saying why."""
        if session != self.selected:
            names = self.session_list.shown()
            if session not in names:
                self.say(f"{session} is hidden by the filter", severity="warning")
                return None
            self.session_list.move_cursor(row=names.index(session), animate=False)
            await self.show_panes()
        return self.grid.panes.get(session)

    # -- session actions ---------------------------------------------------------------------------
    def action_pause(self, session: str | None = None) -> None:
        if info := self._target("pause", session):
            self._engine_call(f"{info.name} paused", lambda: self.engine.pause(info.name))

    def action_resume(self, session: str | None = None) -> None:
        if info := self._target("resume", session):
            self._engine_call(f"{info.name} resumed", lambda: self.engine.resume(info.name))

    def action_terminate(self, session: str | None = None) -> None:
        if not (info := self._target("terminate", session)):
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._engine_call(
                    f"{info.name} terminated", lambda: self.engine.terminate(info.name)
                )

        question = f"Terminate {info.name} ({info.state}, pid {info.pid or '-'})?"
        self.push_screen(ConfirmScreen(question, yes="Terminate"), answered)

    def action_restart(self, session: str | None = None) -> None:
        if not (info := self._target("restart", session)):
            return
        self._engine_call(f"{info.name} queued again", lambda: self.engine.restart(info.name))

    def action_fork(self, session: str | None = None) -> None:
        if not (info := self._target("fork", session)):
            return

        def answered(overrides: dict[str, Any] | None) -> None:
            if overrides is not None:
                self._engine_call(
                    lambda name: f"forked {info.name} as {name}",
                    lambda: self.engine.fork(info.name, overrides),
                )

        infos = self.engine.list_sessions()
        taken = {*(i.name for i in infos), *(i.template for i in infos)}
        here = info.workspace is None or info.workspace == self.engine.deck.directory
        cwd = "the deck's directory" if here else str(info.workspace)
        self.push_screen(
            ForkScreen(info, fork_name(info.template or info.name, taken), cwd), answered
        )

    async def action_focus_pane(self, session: str | None = None) -> None:
        if (info := self._target("focus_pane", session)) is None:
            return
        pane = await self.pane_of(info.name)
        if pane is not None:
            pane.focus()

    async def action_search(self, session: str | None = None) -> None:
        if (info := self._target("search", session)) is None:
            return
        if (pane := await self.pane_of(info.name)) is None:
            return

        def answered(query: str | None) -> None:
            if query:
                self._query = query
                if not pane.find(query):
                    self.say(f"no match for {query!r} in {pane.session}", severity="warning")

        self.push_screen(PromptScreen("Search history", "text", self._query), answered)

    def action_search_next(self, older: bool) -> None:
        pane = self.selected_pane()
        if pane is not None and self._query and not pane.find(self._query, older=older):
            self.say(f"no more matches for {self._query!r}", severity="warning")

    # -- view actions -----------------------------------------------------------------------------
    async def action_zoom(self) -> None:
        self.zoomed = not self.zoomed
        await self.show_panes()

    def action_history_up(self) -> None:
        if (pane := self.selected_pane()) is not None:
            pane.scroll_history(-(pane.size.height - 1))

    def action_history_down(self) -> None:
        if (pane := self.selected_pane()) is not None:
            pane.scroll_history(pane.size.height - 1)

    def action_live(self) -> None:
        if (pane := self.selected_pane()) is not None and pane.in_history:
            pane.leave_history()

    async def action_sort(self) -> None:
        names = list(SORTS)
        sessions = self.session_list
        if sessions.attention_order is None:
            sessions.ordering = names[(names.index(sessions.ordering) + 1) % len(names)]
        sessions.attention_order = None  # from attention first back to the order it was in
        sessions.rebuild()
        await self.show_panes()
        self.say(f"sessions sorted by {sessions.ordering}")

    def on_text_selected(self, event: events.TextSelected) -> None:
        """A mouse drag ended (in a pane's history, or any text): copy it, as terminals do."""
        text = self.screen.get_selected_text()
        if text:
            self.copy_to_clipboard(text)
            self.say(f"copied {len(text.splitlines())} line(s)", timeout=3)

    async def action_copy_mode(self, session: str | None = None) -> None:
        if (info := self._target("copy_mode", session)) is None:
            return
        if (pane := await self.pane_of(info.name)) is not None:
            pane.start_copy()
            self.session_list.copying = pane  # the list reads keys first: they are copy mode's
            self.session_list.focus()

    async def action_attention_first(self) -> None:
        waiting = self.session_list.sort_attention_first()
        await self.show_panes()
        self.say(
            f"{waiting} waiting for you, sorted first (s: back to {self.session_list.ordering})"
        )

    def action_filter(self) -> None:
        async def answered(text: str | None) -> None:
            if text is not None:
                self.session_list.filter = text
                self.session_list.rebuild()
                await self.show_panes()

        prompt = PromptScreen(
            "Filter sessions (name, state or state:NAME)", "all", self.session_list.filter
        )
        self.push_screen(prompt, answered)

    def action_toggle_panels(self) -> None:
        self.query_one("#side").toggle_class("-hidden")

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_quit_room(self) -> None:
        """Attached: detach or stop the service (a viewer just detaches). In-process:
        sessions cannot outlive the room, so ask before stopping them."""
        running = [i for i in self.engine.list_sessions() if i.state not in FINAL_STATES]
        if self.attached and self.read_only:
            self.quit_room("detach")
            return
        if self.attached:

            def chosen(choice: QuitChoice | None) -> None:
                if choice is not None:
                    self.quit_room(choice)

            self.push_screen(QuitScreen(len(running)), chosen)
            return
        if not running:
            self.exit()
            return

        async def stop_all() -> None:
            self.say(f"stopping {counted(len(running), 'session')}…")
            await self.engine.terminate_all()
            self.quit_room("stop")

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(stop_all(), group="quit")

        are = agreeing(len(running), "is", "are")
        still = f"{counted(len(running), 'session')} {are} still running or queued"
        question = f"{still}. Stop them all and quit?"
        self.push_screen(ConfirmScreen(question, yes="Stop all and quit"), answered)

    def quit_room(self, choice: QuitChoice) -> None:
        self.quit_choice = choice
        self.exit()

    # -- palette helpers ------------------------------------------------------------------------
    def palette_sessions(self) -> list[SessionInfo]:
        return self.engine.list_sessions()

    def switch_theme(self, name: str) -> None:
        self.theme = name

    def theme_names(self) -> list[str]:
        return [name for name in self.available_themes if name.startswith("swarmdeck")]
