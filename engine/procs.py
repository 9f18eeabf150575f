"""Find and signal every process group of a terminal's session through /proc.

A session's program may start its own process groups (an interactive shell puts each job
in one), so pause/terminate act on every group in the PTY's session, not only the first.
"""

from __future__ import annotations

import os

import anyio


def _stat(pid: str) -> tuple[int, int] | None:
    """Return (pgrp, session) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()
    return int(fields[2]), int(fields[3])


def session_groups(sid: int, exclude: int | None = None) -> list[int]:
    """Process groups with members in session `sid`, the group `sid` itself first."""
    groups: set[int] = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(entry)
            if st is not None and st[1] == sid and st[0] != exclude:
                groups.add(st[0])
    return sorted(groups, key=lambda g: (g != sid, g))


def signal_groups(groups: list[int], sig: int) -> int:
    """Send sig to each group; return how many groups still existed."""
    sent = 0
    for pgid in groups:
        try:
            os.killpg(pgid, sig)
            sent += 1
        except ProcessLookupError:
            pass
    return sent


def process_state(pid: int) -> str:
    """The one-letter /proc state (R, S, T, Z, ...), or '' if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return ""
    return raw[raw.rfind(b")") + 2 :].split()[0].decode()


def group_members(pgid: int) -> list[int]:
    """Pids whose process group is pgid."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(entry)
            if st is not None and st[0] == pgid:
                pids.append(int(entry))
    return pids


async def wait_group_state(pgid: int, stopped: bool, timeout: float = 0.5) -> bool:
    """Poll until every member of the group is (or is no longer) stopped."""
    with anyio.move_on_after(timeout):
        while True:
            states = {process_state(pid) for pid in group_members(pgid)} - {"", "Z"}
            if stopped == (states <= {"T", "t"}):
                return True
            await anyio.sleep(0.001)
    return False
