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
from engine.remote.protocol import field, line_to_wire, screen_to_wire, statistics_to_wire

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from engine.engine import Engine

Frame = dict[str, Any]


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
    Handler("statistics", _statistics, False, "pool, scheduler and bus statistics"),
    *(
        Handler(kind.model_fields["op"].default, _command, kind.operator, kind.doc)
        for kind in COMMAND_TYPES
    ),
    Handler("shutdown", _shutdown, True, "stop serving: terminate all, then exit"),
]
HANDLERS: dict[str, Handler] = {handler.name: handler for handler in _TABLE}
