"""Line-delimited JSON frames: the codec, the limits and typed field access.

One frame is one JSON object on one line (UTF-8, `\\n`-terminated). The decoder never
raises: a bad line becomes a `BusError` value in its output, so one garbled frame costs its
sender one error frame and nothing else. The server's side only (the stdlib-only CLI client
has its own codec): msgspec decodes a frame ~3.5× and encodes a reply ~9× faster than the
stdlib here; anything msgspec refuses is retried with the stdlib, so the accepted JSON is the
same as `json.loads` accepts.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from engine.bus.bus_errors import BadFrameError, BusError, FrameTooLargeError

MAX_PAYLOAD = 256 * 1024
"""Largest JSON payload (encoded bytes) a message may carry."""
MAX_FRAME = MAX_PAYLOAD + 64 * 1024
"""Largest line the server reads; room for the payload plus the envelope."""

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_loads = json.loads
_fast_dumps = msgspec.json.Encoder().encode
_fast_loads = msgspec.json.Decoder().decode
_fast_lines = msgspec.json.Decoder().decode_lines


def encode(frame: dict[str, Any]) -> bytes:
    """One frame as a line."""
    try:
        return _fast_dumps(frame) + b"\n"
    except (msgspec.EncodeError, TypeError, OverflowError):
        return (_dumps(frame) + "\n").encode()


def error_frame(error: BusError, re: object = None) -> dict[str, Any]:
    return {"re": re, "ok": False, "error": {"code": error.code, "message": str(error)}}


class FrameDecoder:
    """Split a byte stream into frames; oversize lines are skipped up to their newline."""

    def __init__(self, limit: int = MAX_FRAME) -> None:
        self._limit = limit
        self._buf = bytearray()
        self._skipping = False

    def feed(self, data: bytes) -> list[tuple[dict[str, Any] | BusError, int]]:
        """Frames (or the error each bad line earns) completed by `data`, with their sizes
        (a frame's length, or for a batch decoded at once, the batch's: an upper bound)."""
        self._buf += data
        batch = self._batch()
        if batch is not None:
            return batch
        out: list[tuple[dict[str, Any] | BusError, int]] = []
        start = 0
        buf = self._buf
        while (end := buf.find(b"\n", start)) >= 0:
            if self._skipping:
                self._skipping = False
            else:
                out.append((self._decode(bytes(buf[start:end])), end - start))
            start = end + 1
        del buf[:start]
        if len(buf) > self._limit:
            if not self._skipping:
                out.append((FrameTooLargeError(f"frame longer than {self._limit} bytes"), len(buf)))
            self._skipping = True
            buf.clear()
        return out

    def _batch(self) -> list[tuple[dict[str, Any] | BusError, int]] | None:
        """Every complete line decoded in one msgspec call (~1 µs a frame saved), when they
        are all well-formed objects; None sends the caller line by line."""
        buf = self._buf
        end = buf.rfind(b"\n") + 1
        if self._skipping or not end or end > self._limit:
            return None
        region = bytes(buf[:end])
        try:
            frames = _fast_lines(region)
        except (ValueError, RecursionError):
            return None
        if len(frames) != region.count(b"\n") or set(map(type, frames)) != {dict}:
            return None  # a blank line or a non-object: let the slow path name it
        del buf[:end]
        return [(frame, end) for frame in frames]

    def _decode(self, line: bytes) -> dict[str, Any] | BusError:
        if len(line) > self._limit:
            return FrameTooLargeError(f"frame longer than {self._limit} bytes")
        try:
            frame = _fast_loads(line)
        except (ValueError, RecursionError):  # msgspec.DecodeError is a ValueError
            try:
                frame = _loads(line)
            except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
                return BadFrameError(f"not a JSON line: {str(exc)[:120]}")
        if not isinstance(frame, dict):
            return BadFrameError(f"a frame is a JSON object, got {type(frame).__name__}")
        return frame


def field(frame: dict[str, Any], name: str, kind: type, default: Any = ...) -> Any:
    """`frame[name]` checked against `kind` (bool is never an int here); clear error otherwise."""
    value = frame.get(name, default)
    if value is ...:
        raise BadFrameError(f"field {name!r} is required")
    if value is default:
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        got = type(value).__name__
        raise BadFrameError(f"field {name!r} must be {_NAMES.get(kind, kind.__name__)}, got {got}")
    return value


_NAMES: dict[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "an object",
}
