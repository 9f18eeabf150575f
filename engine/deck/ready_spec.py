"""A service's `ready` probe: when a long-running session counts as up, for its dependents.

    ready = { log = "Serving HTTP", port = 8000, timeout = "30s" }

`log` is a regular expression searched in the session's output (escape sequences left
out, `^`/`$` match at line ends); `port` a TCP port on localhost that must accept a
connection. With both, both must hold. A session not ready within `timeout` fails ("not
ready within 30s: ..."), and its dependents waiting on `condition = "ready"` are skipped.
The run-time side is engine/sessions/probe.py.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.deck.durations import Duration  # noqa: TC001 (pydantic needs it)


class ReadySpec(BaseModel):
    """When a service is ready: `log` (a regular expression) appears in its output, and/or
    `port` on localhost accepts a connection; not within `timeout`, the session fails."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    log: str | None = Field(default=None, min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    timeout: Duration = 60.0

    @field_validator("log")
    @classmethod
    def _compiles(cls, log: str | None) -> str | None:
        if log is not None:
            try:
                re.compile(log)
            except re.error as error:
                raise ValueError(f"expected a regular expression ({error}), got {log!r}") from None
        return log

    @model_validator(mode="after")
    def _something_to_wait_for(self) -> ReadySpec:
        if self.log is None and self.port is None:
            raise ValueError("expected `log` (a pattern of its output) and/or `port` (TCP)")
        return self

    def describe(self) -> str:
        """`log /Serving HTTP/ and port 8000`: what readiness waits for."""
        parts = [f"log /{self.log}/"] if self.log is not None else []
        parts += [f"port {self.port}"] if self.port is not None else []
        return " and ".join(parts)
