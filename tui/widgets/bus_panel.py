"""The bus panel: a live, filterable log of bus traffic with counters per event kind.

It reads bus events by field name (route, sender, target, reliable, mailbox, reason…), so
a new bus event shows up without a change here; counters come from the engine's traffic
samples, which also count messages not reported one by one. Until the first event
arrives it explains how sessions publish.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.containers import Vertical
from textual.widgets import DataTable, Input, Static

if TYPE_CHECKING:
    from textual.app import ComposeResult

KEEP = 500
COUNTED = ("routed", "acked", "redelivered", "expired", "dropped", "dead_lettered", "refused")
EMPTY = (
    "No bus traffic yet.\n\n"
    "Sessions publish from inside\ntheir terminal:\n\n"
    "  swarmdeck bus publish \\\n    TOPIC '{\"n\": 1}'\n"
)


def _first(fields: dict[str, Any], *names: str) -> Any:
    for name in names:
        if fields.get(name) not in (None, ""):
            return fields[name]
    return ""


@dataclass(frozen=True, slots=True)
class BusRow:
    at: float
    kind: str
    topic: str
    route: str
    detail: str
    reliability: str

    @classmethod
    def from_event(cls, kind: str, fields: dict[str, Any]) -> BusRow:
        receivers = _first(fields, "target", "receivers", "session", "mailbox")
        if isinstance(receivers, list):
            receivers = ", ".join(map(str, receivers)) or "—"
        sender = _first(fields, "sender", "source")
        reliable = _first(fields, "reliability", "reliable")
        if isinstance(reliable, bool):
            reliable = "reliable" if reliable else "best effort"
        detail = _first(fields, "reason", "code", "size")
        if "mailboxes" in fields:
            detail = f"{fields['mailboxes']} mailboxes"
        if "attempt" in fields or "attempts" in fields:
            detail = f"{detail} · attempt {_first(fields, 'attempt', 'attempts')}"
        return cls(
            at=float(fields.get("at") or time.time()),
            kind=kind.removeprefix("bus-").removeprefix("bus"),
            topic=str(_first(fields, "topic", "route", "mailbox") or "—"),
            route=f"{sender or '?'} → {receivers or '*'}",
            detail=str(detail),
            reliability=str(reliable),
        )

    def matches(self, text: str) -> bool:
        text = text.strip().lower()
        return not text or any(text in part.lower() for part in (self.kind, self.topic, self.route))


class BusPanel(Vertical):
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

    def add_event(self, kind: str, fields: dict[str, Any]) -> None:
        """Per-message events become rows; traffic samples (which also count the messages
        the engine did not report one by one) feed the counters."""
        self.remove_class("-empty")
        if kind == "bus-traffic-sampled":
            for name in COUNTED:
                self.counts[name] += int(fields.get(name) or 0)
            self._counters()
            return
        row = BusRow.from_event(kind, fields)
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
