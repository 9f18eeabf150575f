"""The control socket's command table: one entry per Engine command, as plain data.

A frame `{"op": NAME, "req": ID, ...fields}` runs `COMMANDS[NAME].handler`; `operator`
says whether a viewer is refused (the server checks it before calling anything, so no
client can get around it). Results are wire values (see protocol.py); docs/engine-protocol.md
lists the same table with examples.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.remote.errors import ProtocolError
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
class Command:
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


async def _statistics(ctx: Context, frame: Frame) -> object:
    return statistics_to_wire(ctx.engine)


# -- control and input (operators only) ---------------------------------------------------
async def _start_all(ctx: Context, frame: Frame) -> object:
    ctx.engine.start_all()
    return None


async def _pause(ctx: Context, frame: Frame) -> object:
    await ctx.engine.pause(_session(frame))
    return None


async def _resume(ctx: Context, frame: Frame) -> object:
    await ctx.engine.resume(_session(frame))
    return None


async def _terminate(ctx: Context, frame: Frame) -> object:
    await ctx.engine.terminate(_session(frame))
    return None


async def _terminate_all(ctx: Context, frame: Frame) -> object:
    await ctx.engine.terminate_all()
    return None


async def _restart(ctx: Context, frame: Frame) -> object:
    ctx.engine.restart(_session(frame))
    return None


async def _fork(ctx: Context, frame: Frame) -> object:
    return ctx.engine.fork(_session(frame), frame.get("overrides") or {})


async def _send_input(ctx: Context, frame: Frame) -> object:
    try:
        data = base64.b64decode(field(frame, "data", str), validate=True)
    except binascii.Error:
        raise ProtocolError("send_input: 'data' must be base64") from None
    await ctx.engine.send_input(_session(frame), data)
    return None


async def _resize(ctx: Context, frame: Frame) -> object:
    cols, rows = field(frame, "cols", int), field(frame, "rows", int)
    if not (1 <= cols <= 1000 and 1 <= rows <= 1000):
        raise ProtocolError(f"resize: {cols}x{rows} is out of range")
    ctx.engine.resize(_session(frame), cols, rows)
    return None


async def _save_screen(ctx: Context, frame: Frame) -> object:
    return [str(path) for path in ctx.engine.save_screen(_session(frame))]


async def _shutdown(ctx: Context, frame: Frame) -> object:
    ctx.shutdown()
    return None


_TABLE = [
    Command("list_sessions", _list_sessions, False, "every session's SessionInfo"),
    Command("session_info", _session_info, False, "one session's SessionInfo"),
    Command("screen_snapshot", _screen_snapshot, False, "a full screen"),
    Command("screen_delta", _screen_delta, False, "rows changed after `since`"),
    Command("scrollback", _scrollback, False, "history rows above the screen"),
    Command("statistics", _statistics, False, "pool, scheduler and bus statistics"),
    Command("start_all", _start_all, True, "let the scheduler start the deck"),
    Command("pause", _pause, True, "SIGSTOP a session's process group"),
    Command("resume", _resume, True, "SIGCONT it"),
    Command("terminate", _terminate, True, "stop a session (SIGKILL after its grace)"),
    Command("terminate_all", _terminate_all, True, "stop every live session"),
    Command("restart", _restart, True, "queue a final session again"),
    Command("fork", _fork, True, "a new session from one's spec; returns its name"),
    Command("send_input", _send_input, True, "write base64 `data` to a session's PTY"),
    Command("resize", _resize, True, "resize a session's PTY (last operator wins)"),
    Command("save_screen", _save_screen, True, "write the screen as text and ANSI"),
    Command("shutdown", _shutdown, True, "stop serving: terminate all, then exit"),
]
COMMANDS: dict[str, Command] = {command.name: command for command in _TABLE}
