"""Human-friendly durations for deck files.

A duration is a non-negative number of seconds (``5``, ``0.25``) or a string of
units in descending order: ``"500ms"``, ``"5s"``, ``"2m"``, ``"1h"``, ``"7d"``, ``"1m30s"``,
``"1.5s"``, ``"1h 30m"``. Spaces around the string and between a number and its
unit are tolerated (``" 5 s"``); a bare numeric string (``"5"``) means seconds.
Units are lower case only (``M`` could be read as months) and each appears at
most once, so a typo fails loudly instead of meaning something else.
"""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator

__all__ = ["Duration", "OptionalDuration", "parse_duration"]

_EXPECTED = "expected a duration such as 500ms, 5s, 2m or a number of seconds"
_NUMBER = r"\d+(?:\.\d+)?|\.\d+"
_UNIT_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_PATTERN = re.compile(
    rf"""
    \s*(?:
        (?P<bare>{_NUMBER})
      | (?:(?P<d>{_NUMBER})\s*d\s*)?
        (?:(?P<h>{_NUMBER})\s*h\s*)?
        (?:(?P<m>{_NUMBER})\s*m(?!s)\s*)?
        (?:(?P<s>{_NUMBER})\s*s\s*)?
        (?:(?P<ms>{_NUMBER})\s*ms\s*)?
    )\s*
    """,
    re.VERBOSE,
)


def parse_duration(value: object) -> float:
    """Return `value` in seconds, or raise ValueError naming the accepted forms.

    bool is refused although it is an int: ``timeout = true`` is a mistake.
    """
    if isinstance(value, bool):
        raise ValueError(f"{_EXPECTED}, got {value!r}")
    if isinstance(value, int | float):
        return _from_number(value)
    if isinstance(value, str):
        return _from_text(value)
    raise ValueError(f"{_EXPECTED}, got {value!r}")


def _from_number(value: float) -> float:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"expected a non-negative, finite number of seconds, got {value!r}")
    return float(value)


def _from_text(text: str) -> float:
    match = _PATTERN.fullmatch(text)
    if match is None:
        raise ValueError(f"{_EXPECTED}, got {text!r}")
    if match["bare"] is not None:
        return _from_number(float(match["bare"]))
    parts = {unit: match[unit] for unit in _UNIT_SECONDS if match[unit] is not None}
    if not parts:  # only blanks
        raise ValueError(f"{_EXPECTED}, got {text!r}")
    return _from_number(sum(float(n) * _UNIT_SECONDS[unit] for unit, n in parts.items()))


Duration = Annotated[float, BeforeValidator(parse_duration, json_schema_input_type=float | str)]
"""Seconds as a float, written in a deck as a number or a string like ``"1m30s"``."""

OptionalDuration = Duration | None
"""A Duration that may be left out (None means "no limit")."""
