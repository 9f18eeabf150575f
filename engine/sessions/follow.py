"""A follower's hand-over, owned by one object (docs/scheduling.md, "Followers").

A session lined up to follow a running job passes through the scheduler (which chose it
and may take it back), itself (which sends its job to the launcher) and the terminal
(whose launcher starts it at its predecessor's exit 0, or drops it). `Handover` holds what
each of them used to keep a piece of, and `phase` says where it is:

    lined-up ──▶ sent ──▶ taking-over ──▶ started
        │          │            │
        ▼          └────────────┴──────▶ dropped       (never ran: back to the queue)
    taken-back                                         (never sent: back to the queue)

From `sent` on, the phase is the job's own (terminals/channel.py JOB_TRANSITIONS, moved
only by the launcher's events).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.terminals.channel import JobRun
    from engine.terminals.pooled import Follow


class HandoverPhase(StrEnum):
    LINED_UP = "lined-up"  # chosen; its job not yet sent to the launcher
    TAKEN_BACK = "taken-back"  # the scheduler took it back before it was sent
    SENT = "sent"  # the launcher starts it when the job it follows exits 0
    TAKING_OVER = "taking-over"  # that job exited 0 and started it: "started" is next
    STARTED = "started"
    DROPPED = "dropped"  # sent, but it never ran


@dataclass(eq=False)
class Handover:
    follow: Follow  # the terminal, and the pid of the job it follows there
    run: JobRun | None = None  # its job, once sent
    taken_back: bool = False
    late_stop: str | None = None  # the run stopped meanwhile: stop it if it starts after all

    @property
    def phase(self) -> HandoverPhase:
        if self.run is None:
            return HandoverPhase.TAKEN_BACK if self.taken_back else HandoverPhase.LINED_UP
        return HandoverPhase(self.run.phase.value)

    @property
    def decided(self) -> bool:
        """Its launcher has said: started, or dropped (or the launcher is gone)."""
        return self.run is not None and self.run.fate.is_set()
