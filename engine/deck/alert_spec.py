"""The deck's `[alerts]` table: thresholds the engine watches (engine/alerts.py).

Every threshold is optional; a deck without the table raises no alert. Each names the
figure it compares, from the contention model (docs/contention.md) or the machine:

    [alerts]
    saturation = 1.0          # waiting / slots at or above
    queue_wait_p95 = "30s"    # the live queue wait p95 (still-waiting sessions included)
    failure_rate = 0.2        # failed share of the last failure_window final results
    memory_available = "1GiB" # the machine's available memory below
    dlq_growth = 5            # bus dead letters added in the last minute, at or above
    silent = "2m"             # an active session printed nothing for this long
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from engine.deck.durations import OptionalDuration  # noqa: TC001 (pydantic needs it)
from engine.deck.sizes import OptionalMemorySize  # noqa: TC001 (pydantic needs it)


class AlertsSpec(BaseModel):
    """Strict like every deck table: `saturation = "1"` is a mistake, not a number."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    saturation: float | None = Field(default=None, gt=0.0)
    queue_wait_p95: OptionalDuration = None
    failure_rate: float | None = Field(default=None, gt=0.0, le=1.0)
    memory_available: OptionalMemorySize = None
    dlq_growth: int | None = Field(default=None, ge=1)
    silent: OptionalDuration = None
