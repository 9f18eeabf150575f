"""Human-friendly memory sizes for deck files.

A size is a whole number of bytes (``1048576``) or a number with a unit: ``"512MB"``,
``"1.5GiB"``, ``"200 k"``. Decimal units (kB/KB/k, MB/M, GB/G, TB/T) are powers of 1000,
binary ones (KiB, MiB, GiB, TiB) powers of 1024, as `df -H` and `free --si` read them;
``B`` alone means bytes. Unit letters are case-insensitive except that ``b`` (bits) is
refused, so ``"512Mb"`` fails loudly instead of meaning an eighth of what was meant.
"""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator

__all__ = ["MemorySize", "OptionalMemorySize", "format_size", "parse_size"]

_EXPECTED = "expected a memory size such as 512MB, 1.5GiB or a number of bytes"
_PATTERN = re.compile(r"\s*(?P<n>\d+(?:\.\d+)?|\.\d+)\s*(?P<unit>[A-Za-z]*)\s*")
_DECIMAL = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_BINARY = {"ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}


def parse_size(value: object) -> int:
    """Return `value` in bytes, or raise ValueError naming the accepted forms."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{_EXPECTED}, got {value!r}")
    if isinstance(value, int | float):
        return _whole(float(value), value)
    match = _PATTERN.fullmatch(value)
    if match is None:
        raise ValueError(f"{_EXPECTED}, got {value!r}")
    return _whole(float(match["n"]) * _multiplier(match["unit"], value), value)


def _multiplier(unit: str, original: str) -> int:
    if unit.endswith("b"):
        raise ValueError(f"'b' means bits; write B for bytes (e.g. 512MB), got {original!r}")
    key = unit[:-1] if unit.endswith("B") else unit
    key = key.lower()
    found = _DECIMAL.get(key) or _BINARY.get(key)
    if found is None:
        raise ValueError(f"{_EXPECTED}, got {original!r}")
    return found


def _whole(count: float, original: object) -> int:
    if not math.isfinite(count) or count < 0:
        raise ValueError(f"expected a non-negative, finite size, got {original!r}")
    return round(count)


def format_size(size: int) -> str:
    """Binary units for people: ``536870912`` → ``512 MiB``."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:.4g} {unit}"
    return f"{size} B"


MemorySize = Annotated[int, BeforeValidator(parse_size, json_schema_input_type=int | str)]
"""Bytes as an int, written in a deck as a number or a string like ``"512MB"``."""

OptionalMemorySize = MemorySize | None
"""A MemorySize that may be left out."""
