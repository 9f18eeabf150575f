"""The machine's figures the scheduler reacts to: CPU pressure and available memory.

Read from /proc on every call (cheap: one small file each); nothing is cached but the
previous PSI counter reading, which the stall share of the last period is taken from.
"""

from __future__ import annotations

import os
import time


class CpuPressure:
    """The CPU figures of the last period: PSI stall share and runnable tasks per core."""

    def __init__(self) -> None:
        self._last: tuple[float, float] | None = None

    def read(self) -> tuple[float, float]:
        cores = os.cpu_count() or 1
        runnable = _runnable()
        total = _psi_some_total()
        now = time.monotonic()
        stall = 0.0
        if total is None:  # no PSI: runnable tasks beyond the cores stand in for it
            stall = max(0.0, min(1.0, runnable / cores - 1.0))
        elif self._last is not None and now > self._last[0]:
            stall = min(1.0, (total - self._last[1]) / 1e6 / (now - self._last[0]))
        if total is not None:
            self._last = (now, total)
        return stall, runnable / cores


def _psi_some_total() -> float | None:
    """Microseconds some task waited for a CPU since boot, or None without PSI."""
    try:
        with open("/proc/pressure/cpu", encoding="ascii") as psi:
            first = psi.readline().split()
        return float(first[-1].partition("=")[2])
    except (OSError, ValueError, IndexError):
        return None


def _runnable() -> float:
    """Tasks runnable now, this reader excluded (/proc/loadavg's fourth field)."""
    try:
        with open("/proc/loadavg", encoding="ascii") as loadavg:
            running = loadavg.read().split()[3].partition("/")[0]
        return max(0.0, float(running) - 1)
    except (OSError, ValueError, IndexError):
        return os.getloadavg()[0]


def memory_available() -> float:
    """Available memory as a fraction of total (1.0 when /proc/meminfo is unreadable)."""
    fields = _meminfo()
    total = fields.get("MemTotal", 0)
    return fields.get("MemAvailable", total) / total if total else 1.0


def available_memory() -> int | None:
    """MemAvailable in bytes, or None when /proc/meminfo is unreadable."""
    fields = _meminfo()
    return fields["MemAvailable"] * 1024 if "MemAvailable" in fields else None


def _meminfo() -> dict[str, int]:
    fields: dict[str, int] = {}
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                key, _, rest = line.partition(":")
                fields[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        return {}
    return fields
