"""What a session leaves in `<run dir>/sessions/`: one recording per attempt while it runs,
then the last screen (text and ANSI) and the attempt's exit status.

Files per attempt, `stem` being the session's name for the first attempt and
`name.attempt-N` for later ones: `<stem>.cast` (asciicast v2), `<stem>.exit.json`; the
screen files `<name>.screen.txt` / `.screen.ans` always show the latest attempt. An engine
restarted on the same run directory (after a crash or `kill -9`) numbers its attempts'
files after the ones already there, so it never overwrites what an earlier engine recorded.

The recording is normally written by the terminal's PTY relay process (engine/terminals/relay.py):
`expect`, called before the job is dispatched, asks it to record from then on, and it closes
the file at the job's end. Without a live relay the engine records itself. Creating files
is costly (~0.1-0.4 ms each here, up to 36 ms when the disk's journal is busy: 10 sessions
starting and ending at once in bench/forkjoin.py) and the event loop must not wait for it,
so files are created and written in a worker thread, off the path between one session's
end and the next one's start: `expect` holds any early output, `open` creates the recording
once the job runs and writes what was held, so every byte is recorded, in order.
"""

from __future__ import annotations

import codecs
import json
import time
from typing import TYPE_CHECKING

import anyio

from engine.sessions.recording import CastWriter, cast_header, save_screen, screen_texts
from engine.terminals.terminal import TERM

if TYPE_CHECKING:
    from pathlib import Path

    from engine.screen import Screen
    from engine.terminals.hosts.host_pool import HostTerminal
    from engine.terminals.terminal import Terminal

CAST_ENV = {"TERM": TERM}


class SessionRecords:
    """The files of one session; at most one recording open at a time."""

    def __init__(self, directory: Path, name: str, rotation: tuple[int, int] | None = None) -> None:
        self.directory = directory
        self.name = name
        self._rotation = rotation  # (max_size, keep): the deck's [record]
        self._cast: CastWriter | None = None
        self._held: list[str] | None = None
        self._relayed: Terminal | HostTerminal | None = None  # whose relay records it
        self._relayed_path: Path | None = None
        self._relayed_since = 0.0  # monotonic time the relay was asked to record
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._earlier = _recorded_attempts(directory, name)

    def stem(self, attempt: int) -> str:
        """`name` for the first attempt, `name.attempt-N` for later ones (N counting the
        attempts an earlier engine recorded in this directory)."""
        number = attempt + self._earlier
        return self.name if number == 1 else f"{self.name}.attempt-{number}"

    def expect(self, term: Terminal | HostTerminal, attempt: int, cols: int, rows: int) -> None:
        """An attempt is about to start on `term`: its PTY relay records it from now on
        (the usual case), or the engine holds its output until `open` creates the file."""
        self._decoder.reset()
        path = self.directory / f"{self.stem(attempt)}.cast"
        header = cast_header(cols, rows, self.name, CAST_ENV)
        if term.record(path, header, lambda: self._continue(path, cols, rows), self._rotation):
            self._relayed, self._relayed_path = term, path
            self._relayed_since = time.monotonic()
        else:
            self._held = []

    async def open(self, attempt: int, cols: int, rows: int) -> None:
        """Create the attempt's recording (in a thread) and write the output held so far."""
        if self._relayed is not None:
            return
        path = self.directory / f"{self.stem(attempt)}.cast"
        self._cast = await anyio.to_thread.run_sync(self._create, path, cols, rows)
        for text in self._held or ():
            self._cast.output(text)
        self._held = None

    def _continue(self, path: Path, cols: int, rows: int) -> None:
        """The relay died mid-attempt: the engine appends the rest to its recording. Called
        by the terminal's reader before the first byte it reads itself; a rare fault, so the
        file is opened right here rather than in a thread."""
        self._relayed = self._relayed_path = None
        self.directory.mkdir(parents=True, exist_ok=True)
        self._cast = CastWriter(
            path, cols, rows, self.name, CAST_ENV, resume_from=self._relayed_since,
            **self._rotating(),
        )  # fmt: skip

    def _create(self, path: Path, cols: int, rows: int) -> CastWriter:
        self.directory.mkdir(parents=True, exist_ok=True)
        return CastWriter(path, cols, rows, self.name, CAST_ENV, **self._rotating())

    def _rotating(self) -> dict[str, int]:
        if self._rotation is None:
            return {}
        max_size, keep = self._rotation
        return {"max_size": max_size, "keep": keep}

    def output(self, data: bytes) -> str:
        """Record data (unless the relay does); return it decoded, for the screen."""
        text = self._decoder.decode(data)
        if self._cast is not None:
            self._cast.output(text)
        elif self._held is not None:
            self._held.append(text)
        return text

    def resize(self, cols: int, rows: int) -> None:
        if self._relayed is not None:
            self._relayed.record_resize(cols, rows)
        elif self._cast is not None:
            self._cast.resize(cols, rows)

    def flush(self) -> None:
        """Push buffered output to disk, so a quiet session's last words are not held back
        (the relay flushes its recordings itself)."""
        if self._cast is not None:
            self._cast.flush()

    async def close(self, attempt: int, screen: Screen, exit_info: dict[str, object]) -> None:
        """End the attempt: close the recording, save the screen and the exit status; the
        screen is read here, the files are written in a thread. A relayed recording ended
        at the job's end marker (or end of file) before the engine saw the job end."""
        cast, self._cast, self._held = self._cast, None, None
        if cast is not None:
            cast.output(self._decoder.decode(b"", final=True))
        self._stop_relayed()
        text, ansi = screen_texts(screen)
        status = json.dumps(exit_info, indent=2) + "\n"
        path = self.directory / f"{self.stem(attempt)}.exit.json"

        def write() -> None:
            if cast is not None:
                cast.close()
            save_screen(self.directory, self.name, text, ansi)
            path.write_text(status)

        with anyio.CancelScope(shield=True):  # the files are the attempt's record
            await anyio.to_thread.run_sync(write)

    def discard(self) -> None:
        """The attempt `expect`ed never started (a dropped follower): no recording at all."""
        self._held = None
        if self._cast is not None:  # begun by the engine after a relay death: remove it
            self._cast.close()
            self._cast.path.unlink(missing_ok=True)
            self._cast = None
        if self._relayed is not None and self._relayed_path is not None:
            self._relayed.discard_recording(self._relayed_path)
        self._relayed = self._relayed_path = None

    def abandon(self) -> None:
        """Close the recording as it is (the engine is shutting down mid-attempt)."""
        self._held = None
        self._stop_relayed()
        if self._cast is not None:
            self._cast.close()
            self._cast = None

    def _stop_relayed(self) -> None:
        if self._relayed is not None and self._relayed_path is not None:
            self._relayed.stop_recording(self._relayed_path)  # a no-op once the job's end closed it
        self._relayed = self._relayed_path = None


def _recorded_attempts(directory: Path, name: str) -> int:
    """How many attempts of `name` already have files here (from an earlier engine): two
    stats for a name never recorded, two more per attempt found."""
    count = 0
    while _has_files(directory, name if count == 0 else f"{name}.attempt-{count + 1}"):
        count += 1
    return count


def _has_files(directory: Path, stem: str) -> bool:
    return any((directory / f"{stem}{suffix}").exists() for suffix in (".cast", ".exit.json"))
