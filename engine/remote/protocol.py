"""The control protocol's frames: line-delimited JSON, encoded with msgspec.

One frame is one JSON object on one line (docs/engine-protocol.md). JSON lines keep the
socket debuggable with `socat`; msgspec encodes a 200x50 coloured screen ~11x faster than
the stdlib (28 vs 316 µs measured here), and screens are most of the traffic.

This module turns the engine's plain data (ScreenSnapshot/ScreenDelta, statistics,
errors) into wire values and back; the command table lives in commands.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import msgspec
from anyio.abc import SocketAttribute

from engine import errors as engine_errors
from engine.bus import bus_errors as bus_errors
from engine.bus.stats import BusStatistics
from engine.remote import remote_errors as remote_errors
from engine.screen import (
    DEFAULT_STYLE,
    ScreenDelta,
    ScreenSnapshot,
    ScreenStatus,
    Style,
    TerminalModes,
)
from engine.statistics import (
    ContentionStatistics,
    HostStatistics,
    PoolStatistics,
    SchedulerStatistics,
)

if TYPE_CHECKING:
    import socket
    from collections.abc import AsyncGenerator, Callable, Iterable

    from anyio.abc import SocketStream

    from engine.engine import Engine
    from engine.screen import StyledLine

VERSION = 7
SERVED_VERSIONS = (6, VERSION)  # v7 added `history_since` and a host's `bus_problem`: a v6
# client is served as before (it ignores the new field)
ROLES = ("operator", "viewer")
MAX_CLIENT_FRAME = 1 << 20  # a command (send_input carries at most this much)
MAX_SERVER_FRAME = 64 << 20  # an attach snapshot of many large screens
HELLO_TIMEOUT = 10.0  # seconds either side waits for the other's hello
MAX_CLIENT_NAME = 64  # characters: a name is shown to every client (ClientAttached)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()
_FLAGS = ("bold", "faint", "italic", "underline", "strikethrough", "blink", "inverse")
_styles: dict[tuple[Any, Any, int], Style] = {}
_STYLES_MAX = 4096  # truecolor gradients would grow it without end: start over past this


def encode(frame: dict[str, Any]) -> bytes:
    return _encoder.encode(frame) + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    try:
        frame = _decoder.decode(line)
    except msgspec.DecodeError as exc:
        raise remote_errors.ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(frame, dict):
        raise remote_errors.ProtocolError("a frame must be a JSON object")
    return frame


class LineSocket:
    """Frames over a connected Unix socket stream. I/O waits with anyio.wait_readable and
    wait_writable on the raw socket: UNIXSocketStream's own waits raise InvalidStateError
    on asyncio when cancelled just as data arrives (cf. anyio#1267), which is exactly how
    a server stops or a client detaches. The stream still owns the socket's lifetime."""

    def __init__(self, stream: SocketStream) -> None:
        self.stream = stream
        self._sock: socket.socket = stream.extra(SocketAttribute.raw_socket)

    async def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            await anyio.wait_writable(self._sock)
            try:
                view = view[self._sock.send(view) :]
            except BlockingIOError:
                continue

    async def lines(self, limit: int) -> AsyncGenerator[bytes, None]:
        """Each line (without its newline) until the peer closes."""
        buffer = b""
        while True:
            await anyio.wait_readable(self._sock)
            try:
                chunk = self._sock.recv(1 << 18)
            except BlockingIOError:
                continue
            if not chunk:
                return
            buffer += chunk
            if b"\n" not in chunk:
                if len(buffer) > limit:
                    raise remote_errors.ProtocolError(f"frame over {limit} bytes")
                continue
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                yield line


# -- screens ------------------------------------------------------------------------------
def _run_to_wire(text: str, style: Style) -> list[Any]:
    if style is DEFAULT_STYLE or style == DEFAULT_STYLE:
        return [text]
    flags = sum(1 << i for i, name in enumerate(_FLAGS) if getattr(style, name))
    return [text, style.fg, style.bg, flags]


def _run_from_wire(run: list[Any]) -> tuple[str, Style]:
    if len(run) == 1:
        return run[0], DEFAULT_STYLE
    key = (run[1], run[2], run[3])
    style = _styles.get(key)
    if style is None:
        if len(_styles) >= _STYLES_MAX:
            _styles.clear()
        flags = {name: bool(run[3] >> i & 1) for i, name in enumerate(_FLAGS)}
        style = _styles[key] = Style(run[1], run[2], **flags)
    return run[0], style


def line_to_wire(line: StyledLine) -> list[list[Any]]:
    return [_run_to_wire(text, style) for text, style in line]


def line_from_wire(line: list[list[Any]]) -> StyledLine:
    return tuple(_run_from_wire(run) for run in line)


async def lines_to_wire(pieces: Iterable[Callable[[], list[StyledLine]]]) -> msgspec.Raw:
    """Lines as one encoded JSON list, decoded and encoded a piece (<= 64 lines, ~1 ms) at a
    time with a turn of the loop after each: a 5,000-line coloured history in one go held
    the engine's loop 40-315 ms, and with it the echo of the session being typed into."""
    parts: list[bytes] = []
    for piece in pieces:
        lines = piece()
        if lines:
            parts.append(_encoder.encode(list(map(line_to_wire, lines)))[1:-1])
        await anyio.lowlevel.checkpoint()
    return msgspec.Raw(b"[" + b",".join(parts) + b"]")


def screen_to_wire(screen: ScreenSnapshot | ScreenDelta) -> dict[str, Any]:
    """A snapshot carries every row (`lines`), a delta only the changed ones (`changed`)."""
    status = screen.status
    wire: dict[str, Any] = {
        "revision": screen.revision,
        "cols": screen.cols,
        "rows": screen.rows,
        "cursor": [status.cursor_row, status.cursor_col, status.cursor_visible],
        "title": status.title,
        "modes": status.modes,
        "alternate": status.alternate,
    }
    if isinstance(screen, ScreenSnapshot):
        wire["lines"] = [line_to_wire(line) for line in screen.lines]
    else:
        wire["changed"] = [[row, line_to_wire(line)] for row, line in screen.changed]
    return wire


def screen_from_wire(wire: dict[str, Any]) -> ScreenSnapshot | ScreenDelta:
    cursor, modes = wire["cursor"], TerminalModes(**wire["modes"])
    status = ScreenStatus(cursor[0], cursor[1], cursor[2], wire["title"], modes, wire["alternate"])
    if "lines" in wire:
        lines = tuple(line_from_wire(line) for line in wire["lines"])
        return ScreenSnapshot(wire["cols"], wire["rows"], wire["revision"], lines, status)
    changed = tuple((row, line_from_wire(line)) for row, line in wire["changed"])
    return ScreenDelta(wire["revision"], wire["cols"], wire["rows"], changed, status)


# -- statistics ---------------------------------------------------------------------------
Statistics = tuple[PoolStatistics, SchedulerStatistics, BusStatistics, ContentionStatistics]


def statistics_to_wire(engine: Engine) -> dict[str, Any]:
    """The pool's, scheduler's, bus's and contention statistics (msgspec encodes the
    dataclasses)."""
    return {"pool": engine.pool_statistics(), "scheduler": engine.scheduler_statistics(),
            "bus": engine.bus_statistics(),
            "contention": engine.contention_statistics(),
            "hosts": engine.host_statistics()}  # fmt: skip


def statistics_from_wire(wire: dict[str, Any]) -> Statistics:
    return (
        msgspec.convert(wire["pool"], PoolStatistics),
        msgspec.convert(wire["scheduler"], SchedulerStatistics),
        msgspec.convert(wire["bus"], BusStatistics),
        msgspec.convert(wire["contention"], ContentionStatistics),
    )


def hosts_from_wire(wire: dict[str, Any]) -> list[HostStatistics]:
    """Each [[host]]'s connection figures (docs/hosts.md); none from a deck without hosts."""
    return [msgspec.convert(host, HostStatistics) for host in wire.get("hosts", [])]


# -- errors -------------------------------------------------------------------------------
def _error_classes() -> dict[str, type[engine_errors.SwarmdeckError]]:
    classes: dict[str, type[engine_errors.SwarmdeckError]] = {}
    for module in (engine_errors, bus_errors, remote_errors):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, engine_errors.SwarmdeckError):
                classes.setdefault(value.__name__, value)
    return classes


ERRORS = _error_classes()


def error_to_wire(exc: BaseException) -> dict[str, str]:
    """The class name travels, so the client raises the same class."""
    if isinstance(exc, engine_errors.SwarmdeckError) and ERRORS.get(type(exc).__name__):
        return {"type": type(exc).__name__, "message": str(exc)}
    return {"type": "RemoteError", "message": f"engine error: {exc!r}"}


def error_from_wire(wire: dict[str, Any]) -> engine_errors.SwarmdeckError:
    cls = ERRORS.get(str(wire.get("type")), remote_errors.RemoteError)
    exc = cls.__new__(cls)
    Exception.__init__(exc, str(wire.get("message", "")))
    return exc


def client_name(hello: dict[str, Any]) -> str:
    """The name a hello gives its client, which every other client is shown: a short,
    printable string (a 1 MB name, broadcast, once disconnected a bystander)."""
    name = hello.get("client", "")
    if not isinstance(name, str):
        raise remote_errors.ProtocolError("hello: field 'client' must be a string")
    if len(name) > MAX_CLIENT_NAME:
        raise remote_errors.ProtocolError(
            f"hello: client name of {len(name)} characters, at most {MAX_CLIENT_NAME}"
        )
    if not name.isprintable():
        raise remote_errors.ProtocolError("hello: client name must be printable text")
    return name


def field(frame: dict[str, Any], name: str, kind: type[Any]) -> Any:
    """A required, typed field of a command frame; ProtocolError names what is wrong."""
    value = frame.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        op = frame.get("op")
        raise remote_errors.ProtocolError(f"{op}: field {name!r} must be {kind.__name__}")
    return value
