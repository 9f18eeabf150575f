"""Incidents: an unexpected error in the room is logged, shown in one line, and survived.

Textual ends the app on any exception a handler raises (`App._handle_exception` prints the
traceback over the operator's screen), and the message pump that raised stops for good.
So the room's own pumps (the app, its widgets and dialogs) catch at message dispatch
(`Guarded`) and carry on with the next message; what still reaches `_handle_exception`
(workers, timers, callbacks, Textual's own widgets) is recorded the same way by
`GuardedApp`. The traceback goes to `RUN_DIR/room.log`, a notice names the failure and the
log, and the room goes on. Only before the room is built, or once it is torn down,
Textual's default stands: there is no room yet (or any more) to keep going.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections import Counter
from typing import TYPE_CHECKING, Any

from textual.app import App
from textual.message_pump import MessagePump
from textual.worker import WorkerFailed

if TYPE_CHECKING:
    from pathlib import Path

    from textual.message import Message

log = logging.getLogger(__name__)
LOG_NAME = "room.log"
KEPT = 100
"""Errors kept in memory (for tests and reports); the log has them all."""
LINE = 160
"""A notice is one line: the error's first line, cut to this many characters."""


class Incidents:
    """One room's unexpected errors: each logged with its traceback the first time, counted
    when it repeats (logged again at 2, 4, 8… so a failing timer cannot fill the disk),
    and noticed once per place and kind."""

    def __init__(self, app: App[Any], run_dir: Path) -> None:
        self.app = app
        self.path = run_dir / LOG_NAME
        self.errors: list[BaseException] = []
        self.closed = False
        self._seen: Counter[tuple[str, str]] = Counter()
        self._handler: logging.Handler | None = None
        if os.access(run_dir, os.W_OK):  # else the log would write its own error on screen
            self._handler = logging.FileHandler(self.path, delay=True, encoding="utf-8")
            self._handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
            self._handler.addFilter(lambda record: getattr(record, "room", None) is self)
            log.addHandler(self._handler)

    def record(self, error: BaseException, where: str | None = None) -> None:
        if isinstance(error, WorkerFailed):
            error = error.error
        where = where or _innermost(error)
        self.errors.append(error)
        del self.errors[:-KEPT]
        key = (where, type(error).__name__)
        self._seen[key] += 1
        count = self._seen[key]
        pid = os.getpid()
        if count == 1:
            extra = {"room": self}
            log.error("room %d: %s failed", pid, where, exc_info=error, extra=extra)
            self._notify(f"{where}: {_summary(error)} (details in {self.path})")
        elif count & (count - 1) == 0:
            message = "room %d: %s failed again (%d times): %s"
            log.error(message, pid, where, count, _summary(error), extra={"room": self})

    def _notify(self, text: str) -> None:
        try:
            self.app.notify(text, title="unexpected error", severity="error", markup=False)
        except Exception:  # the notice itself failed: the log has it, the room goes on
            log.exception("room %d: the notice failed", os.getpid(), extra={"room": self})

    def close(self) -> None:
        self.closed = True
        if self._handler is not None:
            log.removeHandler(self._handler)
            self._handler.close()


def _summary(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}".splitlines()[0]
    return text if len(text) <= LINE else text[: LINE - 1] + "…"


def _innermost(error: BaseException) -> str:
    """Where it was raised: function, file and line."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "the room"
    frame = frames[-1]
    return f"{frame.name} ({os.path.basename(frame.filename)}:{frame.lineno})"


def incidents_of(pump: MessagePump) -> Incidents | None:
    """The open incident record of `pump`'s app, if it keeps one."""
    app = pump.app
    found = app.incidents if isinstance(app, GuardedApp) else None
    return found if found is not None and not found.closed else None


class Guarded(MessagePump):
    """Mixin for the room's pumps: a handler's error is an incident, not the pump's end."""

    async def _dispatch_message(self, message: Message) -> None:
        try:
            await super()._dispatch_message(message)
        except Exception as error:
            incidents = incidents_of(self)
            if incidents is None:
                raise
            incidents.record(error, f"{type(self).__name__}.{message.handler_name}")


class GuardedApp(Guarded, App[None]):
    """The app side: errors Textual hands to `_handle_exception` become incidents too,
    once `incidents` is set (the room is built)."""

    incidents: Incidents | None = None

    def _handle_exception(self, error: Exception) -> None:
        if self.incidents is None or self.incidents.closed:
            super()._handle_exception(error)
        else:
            self.incidents.record(error)
