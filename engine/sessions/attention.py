"""Whether a session waits for the operator ("waiting for me"), why, and since when.

One per session, fed by the session's output path and commands and by the engine's
once-a-half-second idle check; each change is one `AttentionChanged`. The rules
(docs/attention.md):

* marked by a bell, a desktop notification, a bus message on `attention` (the newest
  reason wins), or by `idle` seconds of quiet at a prompt after output nobody typed for;
* never while an operator room types into it (focused): the operator is looking;
* cleared when the operator focuses it or types into it, when it stops being active
  (paused, ended), and, for `idle` alone, when it prints again.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from engine.events import AttentionChanged

if TYPE_CHECKING:
    from collections.abc import Callable

    from engine.deck.attention_spec import AttentionSpec
    from engine.events import Event

TEXT_LIMIT = 200


class Attention:
    def __init__(self, session: str, spec: AttentionSpec, emit: Callable[[Event], None]) -> None:
        self.session = session
        self.spec = spec
        self._emit = emit
        self.reason = ""
        self.since: float | None = None
        self.text = ""
        self.watched = False  # an operator room types into it (focused): never marked
        self._armed = True  # output came that nobody typed for: idle may mark it
        self._quiet_since = time.monotonic()

    def output(self, now: float, typed: bool) -> None:
        """The session printed; `typed`: an operator typed into it just before (echo)."""
        self._quiet_since = now
        if not typed:
            self._armed = True
        if self.reason == "idle":
            self.clear()

    def signalled(self, signals: dict[str, str]) -> None:
        """The screen saw a bell or a notification (Screen.take_signals)."""
        if "notify" in signals and self.spec.notify:
            self.mark("notify", signals["notify"])
        elif "bell" in signals and self.spec.bell:
            self.mark("bell")

    def published(self, payload: object) -> None:
        """It published on the bus topic `attention`."""
        if self.spec.bus:
            self.mark("bus", payload if isinstance(payload, str) else _text(payload))

    def check_idle(self, now: float, waits_for_keys: Callable[[], bool]) -> None:
        """Mark it when quiet for `idle` s since output nobody typed for, and its
        foreground program waits for keys (asked only then: it reads /proc)."""
        idle = self.spec.idle
        if self.reason or not self._armed or idle is None or now - self._quiet_since < idle:
            return
        if waits_for_keys():
            self.mark("idle")

    def acknowledge(self) -> None:
        """The operator focused it or typed into it: seen; idle waits for new output."""
        self._armed = False
        self.clear()

    def mark(self, reason: str, text: str = "") -> None:
        text = text[:TEXT_LIMIT]
        if self.watched or (reason, text) == (self.reason, self.text):
            return
        self.reason, self.text, self.since = reason, text, time.time()
        self._armed = False
        changed = AttentionChanged(session=self.session, reason=reason, since=self.since, text=text)
        self._emit(changed)

    def clear(self) -> None:
        if self.reason:
            self.reason, self.text, self.since = "", "", None
            self._emit(AttentionChanged(session=self.session, reason=""))


def _text(payload: object) -> str:
    """A bus payload as one line: its `text` or `message` field, else its JSON."""
    if isinstance(payload, dict):
        for key in ("text", "message"):
            if isinstance(payload.get(key), str):
                return str(payload[key])
    return json.dumps(payload, ensure_ascii=False)
