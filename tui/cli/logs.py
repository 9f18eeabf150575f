"""`swarmdeck logs RUN SESSION [-f]`: a session's output as it was recorded, every byte.

The source is the session's asciicast recordings in the run directory (one per attempt,
`<name>.cast`, `<name>.attempt-N.cast`; engine/sessions/records.py), so nothing scrolled
off a screen is missing and escapes are kept. With `-f` the newest recording is followed
until the session reaches a final state (it is complete by then) or the engine goes away;
later attempts are followed as they begin. Like the recordings, it needs the engine's host.
A recording rotated by the deck's `record.max_size` is read from its oldest part kept
(`<stem>.<keep>.cast` ... `<stem>.1.cast`, then `<stem>.cast`), and a rotation while it is
followed is noticed (the file at the path is a new one) and read across.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING

import anyio

from engine import FINAL_STATES

if TYPE_CHECKING:
    from pathlib import Path

    from engine.remote import RemoteEngine

POLL = 0.1
"""Seconds between looks at a followed recording (the relay writes events unbuffered)."""


class _Recording:
    """One asciicast file read incrementally: whole event lines only, header skipped."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.partial, self.header = path, 0, b"", True
        self.inode: int | None = None

    def read(self) -> str:
        """The output recorded since the last read (across a rotation of the file)."""
        try:
            with self.path.open("rb") as file:
                inode = os.fstat(file.fileno()).st_ino
                if self.inode is not None and inode != self.inode:  # rotated meanwhile
                    rotated = self.path.with_name(self.path.name.removesuffix(".cast") + ".1.cast")
                    before = self._rest_of(rotated)
                    self.offset, self.partial, self.header = 0, b"", True
                    self.inode = inode
                    return before + self.read()
                self.inode = inode
                file.seek(self.offset)
                data = file.read()
        except FileNotFoundError:
            return ""
        return self._events(data)

    def _rest_of(self, rotated: Path) -> str:
        """What the file had after our offset, now that it is `rotated` (if it still is)."""
        try:
            with rotated.open("rb") as file:
                if os.fstat(file.fileno()).st_ino != self.inode:
                    return ""  # rotated more than once between two looks: that part is gone
                file.seek(self.offset)
                return self._events(file.read())
        except FileNotFoundError:
            return ""

    def _events(self, data: bytes) -> str:
        self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        out = []
        for line in lines:
            if self.header:
                self.header = False  # the {"version": 2, ...} line
                continue
            event = json.loads(line)
            if event[1] == "o":
                out.append(event[2])
        return "".join(out)


def _stem(name: str, attempt: int) -> str:
    return name if attempt == 1 else f"{name}.attempt-{attempt}"


async def print_logs(remote: RemoteEngine, name: str, follow: bool) -> int:
    remote.session_info(name)  # UnknownSessionError names the known ones
    directory = remote.run_dir / "sessions"
    attempt, recording = 1, _Recording(directory / f"{name}.cast")
    _write(_older_parts(directory, _stem(name, attempt)))
    while True:
        final = remote.lost is not None or remote.session_info(name).state in FINAL_STATES
        _write(recording.read())
        after = directory / f"{_stem(name, attempt + 1)}.cast"
        if after.exists():
            _write(recording.read())  # anything written before the next attempt began
            attempt, recording = attempt + 1, _Recording(after)
            _write(_older_parts(directory, _stem(name, attempt)))
            continue
        if not follow or final:
            return 0
        await anyio.sleep(POLL)


def _older_parts(directory: Path, stem: str) -> str:
    """The rotated parts of one attempt's recording, oldest first."""
    parts, number = [], 1
    while (directory / f"{stem}.{number}.cast").exists():
        parts.append(_Recording(directory / f"{stem}.{number}.cast").read())
        number += 1
    return "".join(reversed(parts))


def _write(text: str) -> None:
    if text:
        sys.stdout.write(text)
        sys.stdout.flush()
