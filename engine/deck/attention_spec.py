"""A session's `attention` table: when it is marked as waiting for the operator.

    attention = { idle = "10s", bell = true, notify = true, bus = true }

`idle`: quiet this long at a prompt (engine/terminals/foreground.py) marks it; `"off"`
or `false` never does. `bell`: a BEL it prints; `notify`: an OSC 9 / OSC 777 desktop
notification it sends; `bus`: a message it publishes on the bus topic `attention`
(`swarmdeck bus publish attention '"review please"'`). The rules are in docs/attention.md.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from engine.deck.durations import parse_duration

DEFAULT_IDLE = 10.0


def _idle(value: object) -> object:
    """`"off"` or `false` turn the idle rule off; otherwise a duration above zero."""
    if value is False or value == "off":
        return None
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f'expected a duration above 0 (or "off"), got {value!r}')
    return seconds


class AttentionSpec(BaseModel):
    """When the session is marked as waiting for the operator (docs/attention.md): `idle`
    quiet this long at a prompt (`"off"`: never), a `bell` (BEL), a desktop `notify`
    (OSC 9 / 777), a `bus` message on the topic `attention`. Strict like every table."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    idle: Annotated[
        float | None, BeforeValidator(_idle, json_schema_input_type=float | str | bool)
    ] = Field(default=DEFAULT_IDLE, validate_default=False)
    bell: bool = True
    notify: bool = True
    bus: bool = True
