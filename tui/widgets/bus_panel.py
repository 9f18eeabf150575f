"""The bus panel: a live, filterable log of bus traffic with counters per event kind.

Each kind of bus event (engine/events.py `BusEvent`) has its own row, read from its typed
fields, so a renamed field fails mypy here rather than showing a blank; counters come from
the engine's traffic samples, which also count messages not reported one by one. Until the
first event arrives it explains how sessions publish.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.containers import Vertical
from textual.widgets import DataTable, Input, Static

from engine import (
    BusJournalFailed,
    BusMessageAcked,
    BusMessageDeadLettered,
    BusMessageDropped,
    BusMessageExpired,
    BusMessageRedelivered,
    BusMessageRouted,
    BusRequestRefused,
    BusTrafficSampled,
)
from tui.incidents import Guarded

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from engine import BusEvent

KEEP = 500
COUNTED = ("routed", "acked", "redelivered", "expired", "dropped", "dead_lettered", "refused")
EMPTY = (
    "No bus traffic yet.\n\n"
    "Sessions publish from inside\ntheir terminal:\n\n"
    "  swarmdeck bus publish \\\n    TOPIC '{\"n\": 1}'\n"
)


@dataclass(frozen=True, slots=True)
class BusRow:
    at: float
    kind: str
    topic: str
    route: str
    detail: str
    reliability: str

    @classmethod
    def from_event(cls, event: BusEvent) -> BusRow:
        """One row per kind of event, each field read by name from its typed model."""
        topic, route, reliability, detail = "—", "", "", ""
        match event:
            case BusMessageRouted():
                topic, route = _addressed(event)
                reliability = _delivery(event.reliable)
                detail = f"{event.mailboxes} mailboxes"
            case BusMessageAcked():
                topic, route = event.mailbox, f"{event.session} acked"
            case BusMessageRedelivered():
                topic, detail = event.mailbox, f"{event.reason} · attempt {event.attempt}"
            case BusMessageExpired():
                topic, reliability = event.mailbox, _delivery(event.reliable)
            case BusMessageDropped():
                topic, detail = event.mailbox, event.reason
            case BusMessageDeadLettered():
                topic, detail = event.mailbox, f"{event.reason} · attempt {event.attempts}"
            case BusRequestRefused():
                topic, route = event.op, f"{event.session or '?'} refused"
                detail = f"{event.code}: {event.reason}"
            case BusJournalFailed():
                topic, route = event.path, "journal"
                detail = f"write failed ({event.failures}): {event.error}"
        return cls(
            at=event.at,
            kind=event.kind.removeprefix("bus-"),
            topic=topic,
            route=route,
            detail=detail,
            reliability=reliability,
        )

    def matches(self, text: str) -> bool:
        text = text.strip().lower()
        return not text or any(text in part.lower() for part in (self.kind, self.topic, self.route))


def _addressed(event: BusMessageRouted) -> tuple[str, str]:
    """(topic column, from → to): a topic, queue or group is named where topics go; a
    direct message names its receiver, a broadcast reaches everyone."""
    if event.route == "direct":
        return "(direct)", f"{event.sender} → {event.target}"
    if event.route == "broadcast":
        return "(broadcast)", f"{event.sender} → *"
    return event.target, f"{event.sender} → {event.route}"


def _delivery(reliable: bool) -> str:
    return "reliable" if reliable else "best effort"


class BusPanel(Guarded, Vertical):
    def __init__(self, redact: bool = False) -> None:
        super().__init__(id="bus", classes="-empty")
        self.border_title = "bus"
        self.redact = redact
        self.rows: deque[BusRow] = deque(maxlen=KEEP)
        self.counts: Counter[str] = Counter()

    def compose(self) -> ComposeResult:
        yield Static("", id="bus-counters")
        yield Input(placeholder="filter: topic, session or kind", id="bus-filter")
        yield DataTable[str](id="bus-log", cursor_type="none", show_cursor=False)
        yield Static(EMPTY, id="bus-empty")

    def on_mount(self) -> None:
        log = self.query_one("#bus-log", DataTable)
        for column in ("time", "event", "topic", "from → to", "delivery", "detail"):
            log.add_column(column)

    def add_event(self, event: BusEvent) -> None:
        """Per-message events become rows; traffic samples (which also count the messages
        the engine did not report one by one) feed the counters."""
        self.remove_class("-empty")
        if isinstance(event, BusTrafficSampled):
            for name in COUNTED:
                self.counts[name] += getattr(event, name)
            self._counters()
            return
        row = BusRow.from_event(event)
        self.rows.append(row)
        if row.matches(self.query_one("#bus-filter", Input).value):
            self._add(row)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        log = self.query_one("#bus-log", DataTable)
        log.clear()
        for row in self.rows:
            if row.matches(event.value):
                self._add(row)

    def _add(self, row: BusRow) -> None:
        stamp = "··:··:··" if self.redact else time.strftime("%H:%M:%S", time.localtime(row.at))
        log = self.query_one("#bus-log", DataTable)
        log.add_row(stamp, row.kind, row.topic, row.route, row.reliability, row.detail)
        if log.row_count > KEEP:
            log.remove_row(next(iter(log.rows)))
        log.scroll_end(animate=False)

    def _counters(self) -> None:
        parts = [f"{name.replace('_', ' ')} {self.counts[name]}" for name in COUNTED]
        self.query_one("#bus-counters", Static).update("  ".join(parts))
