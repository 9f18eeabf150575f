"""Session output to disk as asciicast v2, so `asciinema play` can replay any session.

The engine calls `output` on every PTY read (up to ~50 MB/s), so events go through the
file object's buffer and are flushed at most every FLUSH_INTERVAL: a crash loses well
under a second of output, and a flood costs one syscall per half second, not per read.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Self

import msgspec

from engine.terminals.relay_process import rotate_cast, split_output

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType

    from engine.screen import Screen

FLUSH_INTERVAL = 0.5
_BUFFER_SIZE = 1 << 16
# msgspec writes the event line as UTF-8 bytes in one C call: ~5x cheaper than json.dumps
# plus the text layer's encode, which cost ~16 % of the engine's CPU in a flood.
_encode = msgspec.json.Encoder().encode


def cast_header(cols: int, rows: int, title: str, env: dict[str, str]) -> dict[str, object]:
    """The first line of an asciicast v2 file (here and in the PTY relay's recordings)."""
    return {
        "version": 2,
        "width": cols,
        "height": rows,
        "timestamp": int(time.time()),
        "title": title,
        "env": env,
    }


class CastWriter:
    """An open asciicast v2 file; one instance per recorded session. With `max_size` it is
    rotated as the relay's are (engine/terminals/relay_process.py, `rotate_cast`): the event
    that takes it past max_size is its last, and a new file with its own header begins."""

    def __init__(
        self,
        path: Path,
        cols: int,
        rows: int,
        title: str,
        env: dict[str, str],
        *,
        resume_from: float | None = None,
        max_size: int | None = None,
        keep: int = 0,
    ) -> None:
        """A new recording; or, with `resume_from` (the monotonic time it began), the rest of
        one another process started (the PTY relay, which died): appended after its last
        whole event line."""
        self.path = path
        self._size_now, self._title, self._env = (cols, rows), title, env
        self._max_size, self._keep = max_size, keep
        if resume_from is not None and path.exists():
            _cut_to_last_line(path)
            self._file = path.open("ab", buffering=_BUFFER_SIZE)
            self._start = self._flushed = _began(path, resume_from, max_size is not None)
            self._written = path.stat().st_size
            return
        self._begin()

    def _begin(self) -> None:
        self._file = self.path.open("wb", buffering=_BUFFER_SIZE)
        self._start = time.monotonic()
        self._flushed = self._start
        header = cast_header(*self._size_now, self._title, self._env)
        line = json.dumps(header, ensure_ascii=False).encode() + b"\n"
        self._file.write(line)
        self._file.flush()
        self._written = len(line)

    @property
    def closed(self) -> bool:
        return self._file.closed

    def output(self, data: str) -> None:
        self._event("o", data)

    def resize(self, cols: int, rows: int) -> None:
        self._size_now = (cols, rows)
        self._event("r", f"{cols}x{rows}")

    def marker(self, label: str) -> None:
        self._event("m", label)

    def flush(self) -> None:
        """Push buffered events to the OS; the engine's frame ticker does it every ~0.5 s."""
        if not self._file.closed:
            self._file.flush()
            self._flushed = time.monotonic()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _event(self, code: str, data: str) -> None:
        now = time.monotonic()
        line = _line(now - self._start, code, data)
        if self._max_size is not None and code == "o":
            data, rest = split_output(data, len(line) + 1, self._max_size - self._written)
            if rest:  # the part that fits, then the rest in the next file
                self._file.write(_line(now - self._start, code, data) + b"\n")
                self._file.close()
                rotate_cast(str(self.path), self._keep)
                self._begin()
                self._event(code, rest)
                return
        self._file.write(line + b"\n")
        self._written += len(line) + 1
        if self._max_size is not None and self._written >= self._max_size:
            self._file.close()
            rotate_cast(str(self.path), self._keep)
            self._begin()
        elif now - self._flushed >= FLUSH_INTERVAL:
            self._file.flush()
            self._flushed = now


def _line(at: float, code: str, data: str) -> bytes:
    try:
        return _encode((round(at, 6), code, data))
    except UnicodeEncodeError:  # a lone surrogate must not end the recording
        return _encode((round(at, 6), code, _scrub(data)))


def _began(path: Path, resume_from: float, rotated: bool) -> float:
    """When the recording at `path` began (monotonic): `resume_from`, unless the relay may
    have rotated it since, when its header's timestamp tells (to the second)."""
    if not rotated:
        return resume_from
    with path.open("rb") as f:
        try:
            stamp = float(json.loads(f.readline())["timestamp"])
        except (ValueError, KeyError, TypeError):
            return resume_from
    return max(resume_from, time.monotonic() - (time.time() - stamp))


def _cut_to_last_line(path: Path) -> None:
    """Drop a partly written last line (a writer killed mid-write)."""
    with path.open("r+b") as f:
        size = f.seek(0, 2)
        start = f.seek(max(size - _BUFFER_SIZE, 0))
        tail = f.read()
        if tail and not tail.endswith(b"\n") and b"\n" in tail:
            f.truncate(start + tail.rfind(b"\n") + 1)


def _scrub(text: str) -> str:
    return text.encode("utf-8", "replace").decode("utf-8")


def screen_texts(screen: Screen) -> tuple[str, str]:
    """The visible screen as plain text and as ANSI (`cat` the latter to see it in colour)."""
    return "\n".join(screen.text()) + "\n", screen.ansi()


def save_screen(directory: Path, name: str, text: str, ansi: str) -> tuple[Path, Path]:
    """Write `screen_texts` as `<name>.screen.txt` and `<name>.screen.ans`."""
    directory.mkdir(parents=True, exist_ok=True)
    text_path = directory / f"{name}.screen.txt"
    ansi_path = directory / f"{name}.screen.ans"
    text_path.write_text(text, encoding="utf-8")
    ansi_path.write_text(ansi, encoding="utf-8")
    return text_path, ansi_path
