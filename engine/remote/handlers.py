"""The control socket's table: one entry per query and per typed command, as plain data.

A frame `{"op": NAME, "req": ID, ...fields}` runs `HANDLERS[NAME].handler`; `operator`
says whether a viewer is refused (the server checks it before calling anything, so no
client can get around it). Commands are validated into engine/commands.py's models and
carried out by `Engine.run`, the same path the in-process room takes. Results are wire
values (see protocol.py); docs/engine-protocol.md lists the same table with examples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.commands import COMMAND_TYPES, parse_command
from engine.errors import InvalidCommandError
from engine.remote.protocol import (
    field,
    line_to_wire,
    lines_to_wire,
    screen_to_wire,
    statistics_to_wire,
)
from engine.remote.remote_errors import ProtocolError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from engine.engine import Engine

Frame = dict[str, Any]
MAX_HISTORY_COUNT = 10_000
"""Stored lines one `history_since` reply carries at most (a default 5,000-line history
fits in one); a client with more to catch up asks again from where the reply ended."""


@dataclass(frozen=True)
class Context:
    """What a handler may touch: the engine, and the server's way to stop serving."""

    engine: Engine
    shutdown: Callable[[], None]


@dataclass(frozen=True)
class Handler:
    name: str
    handler: Callable[[Context, Frame], Awaitable[object]]
    operator: bool
    doc: str


def _session(frame: Frame) -> str:
    return str(field(frame, "session", str))


# -- queries (any role) -------------------------------------------------------------------
async def _list_sessions(ctx: Context, frame: Frame) -> object:
    return [info.model_dump(mode="json") for info in ctx.engine.list_sessions()]


async def _session_info(ctx: Context, frame: Frame) -> object:
    return ctx.engine.session_info(_session(frame)).model_dump(mode="json")


async def _screen_snapshot(ctx: Context, frame: Frame) -> object:
    return screen_to_wire(ctx.engine.screen_snapshot(_session(frame)))


async def _screen_delta(ctx: Context, frame: Frame) -> object:
    return screen_to_wire(ctx.engine.screen_delta(_session(frame), field(frame, "since", int)))


async def _scrollback(ctx: Context, frame: Frame) -> object:
    count = frame.get("count")
    lines = ctx.engine.scrollback(_session(frame), int(frame.get("start", 0)), count)
    return [line_to_wire(line) for line in lines]


async def _history(ctx: Context, frame: Frame) -> object:
    name = _session(frame)
    lines = ctx.engine.history(name)  # one instant: the screen's rows are the last `rows`
    return {"rows": ctx.engine.sessions[name].screen.rows, "lines": list(map(line_to_wire, lines))}


async def _history_since(ctx: Context, frame: Frame) -> object:
    """Stored lines from `start` (absolute, see HistoryRead) plus the tail and screen, all
    as they were when the frame arrived, encoded a piece at a time between other work."""
    name = _session(frame)
    start = field(frame, "start", int)
    count = frame.get("count", MAX_HISTORY_COUNT)
    if not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= MAX_HISTORY_COUNT:
        raise ProtocolError(
            f"history_since: field 'count' must be an int in 1..{MAX_HISTORY_COUNT}, got {count!r}"
        )
    try:
        read = ctx.engine.history_read(name, start, count)
    except InvalidCommandError as exc:
        raise InvalidCommandError(f"history_since {name!r}: {exc}") from None
    fields = {"first": read.first, "end": read.end, "start": read.start, "rows": read.rows}
    return {
        **fields,
        "alternate": read.alternate,
        "lines": await lines_to_wire(read.pieces),
        "tail": await lines_to_wire(read.tail),
    }


async def _statistics(ctx: Context, frame: Frame) -> object:
    return statistics_to_wire(ctx.engine)


# -- commands (engine/commands.py: typed, shared with the in-process Engine) -------------
async def _command(ctx: Context, frame: Frame) -> object:
    return (await ctx.engine.run(parse_command(frame))).model_dump(mode="json")


async def _shutdown(ctx: Context, frame: Frame) -> object:
    ctx.shutdown()
    return None


_TABLE = [
    Handler("list_sessions", _list_sessions, False, "every session's SessionInfo"),
    Handler("session_info", _session_info, False, "one session's SessionInfo"),
    Handler("screen_snapshot", _screen_snapshot, False, "a full screen"),
    Handler("screen_delta", _screen_delta, False, "rows changed after `since`"),
    Handler("scrollback", _scrollback, False, "history rows above the screen"),
    Handler("history", _history, False, "scrollback then screen, at one instant"),
    Handler("history_since", _history_since, False, "stored lines from an index, tail, screen"),
    Handler("statistics", _statistics, False, "pool, scheduler and bus statistics"),
    *(
        Handler(kind.model_fields["op"].default, _command, kind.operator, kind.doc)
        for kind in COMMAND_TYPES
    ),
    Handler("shutdown", _shutdown, True, "stop serving: terminate all, then exit"),
]
HANDLERS: dict[str, Handler] = {handler.name: handler for handler in _TABLE}
