"""A client's copy of the engine's state, kept current by the server's pushes.

Synchronous queries of RemoteEngine answer from here, exactly as the engine would: each
screen keeps per-row revisions, so `delta(since)` returns the rows changed after `since`
(a pushed snapshot bumps only the rows whose content differs).
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter

from engine.bus_log import BusLog
from engine.deck.spec import DeckSpec, SessionSpec
from engine.events import (
    AlertCleared,
    AlertRaised,
    ContentionSampled,
    Event,
    ScreenChanged,
    SessionAdded,
    is_bus_event,
)
from engine.remote.protocol import hosts_from_wire, screen_from_wire, statistics_from_wire
from engine.scheduling.contention import HISTORY
from engine.screen import ScreenDelta, ScreenSnapshot, ScreenStatus
from engine.sessions.session import SessionInfo

if TYPE_CHECKING:
    from engine.remote.history_copy import HistoryCopy

EVENT: TypeAdapter[Event] = TypeAdapter(Event)


class ScreenMirror:
    def __init__(self, snapshot: ScreenSnapshot) -> None:
        self._snap = snapshot
        self._lines = list(snapshot.lines)
        self._row_rev = [snapshot.revision] * snapshot.rows

    @property
    def revision(self) -> int:
        return self._snap.revision

    @property
    def alternate(self) -> bool:
        return self._snap.status.alternate

    def apply(self, update: ScreenSnapshot | ScreenDelta) -> None:
        if (update.cols, update.rows) != (self._snap.cols, self._snap.rows):
            assert isinstance(update, ScreenSnapshot), "the server sends a snapshot on resize"
            self._lines, self._row_rev = list(update.lines), [update.revision] * update.rows
        elif isinstance(update, ScreenSnapshot):
            for row, line in enumerate(update.lines):
                if line != self._lines[row]:
                    self._lines[row], self._row_rev[row] = line, update.revision
        else:
            for row, line in update.changed:
                self._lines[row], self._row_rev[row] = line, update.revision
        u = update
        self._snap = ScreenSnapshot(u.cols, u.rows, u.revision, (), u.status)

    def snapshot(self) -> ScreenSnapshot:
        s = self._snap
        return ScreenSnapshot(s.cols, s.rows, s.revision, tuple(self._lines), s.status)

    def delta(self, since: int) -> ScreenDelta:
        s = self._snap
        changed = tuple((r, self._lines[r]) for r, rev in enumerate(self._row_rev) if rev > since)
        return ScreenDelta(s.revision, s.cols, s.rows, changed, s.status)


def _blank(cols: int, rows: int) -> ScreenSnapshot:
    return ScreenSnapshot(cols, rows, 0, ((),) * rows, ScreenStatus())


class Mirror:
    """Deck, sessions (info and spec), screens and statistics, as last pushed."""

    def __init__(self, attach: dict[str, Any]) -> None:
        self.server_pid: int = attach["pid"]
        self.role: str = attach["role"]
        self.deck_path = Path(attach["deck_path"])
        self._deck_wire: dict[str, Any] = attach["deck"]
        self._deck: DeckSpec | None = None
        self.run_dir = Path(attach["run_dir"])
        self.infos: dict[str, SessionInfo] = {}
        self._specs: dict[str, dict[str, Any] | SessionSpec] = {}
        self.screens: dict[str, ScreenMirror] = {}
        self.history: dict[str, HistoryCopy] = {}  # sessions' history, as last prefetched
        for session in attach["sessions"]:
            info = SessionInfo.model_validate(session["info"])
            self.infos[info.name] = info
            self._specs[info.name] = session["spec"]
            snapshot = screen_from_wire(session["screen"])
            assert isinstance(snapshot, ScreenSnapshot)
            self.screens[info.name] = ScreenMirror(snapshot)
        self.pool, self.scheduler, self.bus, self.contention = statistics_from_wire(attach["stats"])
        self.hosts = hosts_from_wire(attach["stats"])
        self.contention_history: deque[ContentionSampled] = deque(
            (ContentionSampled.model_validate(e) for e in attach.get("contention_history", [])),
            maxlen=HISTORY,
        )
        self.alert_history: deque[AlertRaised | AlertCleared] = deque(maxlen=HISTORY)
        bus = [EVENT.validate_python(wire) for wire in attach.get("bus_history", [])]
        self.bus_log = BusLog([e for e in bus if is_bus_event(e)])
        for wire in attach.get("alert_history", []):
            alert = EVENT.validate_python(wire)
            assert isinstance(alert, AlertRaised | AlertCleared)
            self.alert_history.append(alert)

    # Specs are validated on first use (fork): at ~1 ms each they would dominate attach.
    @property
    def deck(self) -> DeckSpec:
        if self._deck is None:
            self._deck = DeckSpec.model_validate(self._deck_wire, context={"path": self.deck_path})
        return self._deck

    def spec(self, name: str) -> SessionSpec:
        spec = self._specs[name]
        if isinstance(spec, dict):
            spec = self._specs[name] = SessionSpec.model_validate(
                spec, context={"path": self.deck_path}
            )
        return spec

    def apply(self, frame: dict[str, Any]) -> list[Event]:
        """Update from one push; the events to publish to this client's subscribers."""
        kind = frame.get("push")
        if kind == "event":
            event = EVENT.validate_python(frame["event"])
            if isinstance(event, SessionAdded):
                self._specs[event.session] = event.spec
            if "info" in frame:
                info = SessionInfo.model_validate(frame["info"])
                self.infos[info.name] = info
                if info.name not in self.screens:  # a fork: its first screen is on its way
                    self.screens[info.name] = ScreenMirror(_blank(info.cols, info.rows))
            if isinstance(event, AlertRaised | AlertCleared):
                self.alert_history.append(event)
            self.bus_log.record(event)
            return [event]
        if kind == "screen":
            return [self._apply_screen(frame["session"], frame)]
        if kind == "stats":
            self.pool, self.scheduler, self.bus, self.contention = statistics_from_wire(frame)
            self.hosts = hosts_from_wire(frame)
            events = [EVENT.validate_python(event) for event in frame["events"]]
            for event in events:
                seen = self.contention_history[-1].at if self.contention_history else 0.0
                if isinstance(event, ContentionSampled) and event.at > seen:
                    self.contention_history.append(event)
            return events
        return []

    def _apply_screen(self, name: str, frame: dict[str, Any]) -> Event:
        update = screen_from_wire(frame)
        mirror = self.screens.get(name)
        if mirror is None:
            assert isinstance(update, ScreenSnapshot), "a new session's first screen is full"
            self.screens[name] = ScreenMirror(update)
        else:
            mirror.apply(update)
        info = self.infos.get(name)
        shown = (update.status.title, update.cols, update.rows)
        if info is not None and (info.title, info.cols, info.rows) != shown:
            fields = {"title": update.status.title, "cols": update.cols, "rows": update.rows}
            self.infos[name] = info.model_copy(update=fields)
        return ScreenChanged(session=name, revision=update.revision)
