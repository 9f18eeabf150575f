"""The operator's commands as typed data: one request model and one result model each.

The in-process Engine and the control socket share these models, so a command means the
same thing whichever way it arrives: `Engine.run(command)` carries it out, RemoteEngine
sends `command.model_dump(mode="json")` and the server validates the frame back into the
same model (`parse_command`), and every refusal comes back as an error the caller sees.
`operator` says whether a viewer is refused; the server checks it before running anything.

Size: one small model per command and its method on CommandCalls, kept side by side so a
new command is one place to read (and the protocol table in docs/engine-protocol.md).
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path  # noqa: TC003 (pydantic needs it at runtime)
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, TypeAdapter, ValidationError
from pydantic.functional_validators import BeforeValidator

from engine.errors import InvalidCommandError

MAX_SIDE = 1000  # columns or rows: a larger PTY is a mistake (or an attack), not a screen


def _from_base64(value: object) -> object:
    """Bytes travel as base64 text on the wire; in process they are bytes already."""
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error:
            raise ValueError("must be base64") from None
    return value


Base64Bytes = Annotated[
    bytes,
    BeforeValidator(_from_base64),
    PlainSerializer(lambda b: base64.b64encode(b).decode(), return_type=str, when_used="json"),
]


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    operator: ClassVar[bool] = True
    doc: ClassVar[str] = ""


class _SessionCommand(_Command):
    session: str


class StartAll(_Command):
    doc = "let the scheduler start the deck"
    op: Literal["start_all"] = "start_all"


class PauseSession(_SessionCommand):
    doc = "SIGSTOP a session's process group"
    op: Literal["pause"] = "pause"


class ResumeSession(_SessionCommand):
    doc = "SIGCONT it"
    op: Literal["resume"] = "resume"


class TerminateSession(_SessionCommand):
    doc = "stop a session (SIGKILL after its grace)"
    op: Literal["terminate"] = "terminate"


class TerminateAll(_Command):
    doc = "stop every live session"
    op: Literal["terminate_all"] = "terminate_all"


class RestartSession(_SessionCommand):
    doc = "queue a final session again"
    op: Literal["restart"] = "restart"


class StartSession(_SessionCommand):
    doc = "start a session that waits for an operator (autostart = false)"
    op: Literal["start"] = "start"


class ForkSession(_SessionCommand):
    doc = "a new session from one's spec, with overrides; the engine names it"
    op: Literal["fork"] = "fork"
    overrides: dict[str, Any] = Field(default_factory=dict)


class AddSession(_Command):
    doc = "a new session from a session table (a deck's [[session]] fields)"
    op: Literal["add"] = "add"
    table: dict[str, Any]


class SendInput(_SessionCommand):
    doc = "write bytes (base64 on the wire) to a session's PTY"
    op: Literal["send_input"] = "send_input"
    data: Base64Bytes


class ResizeSession(_SessionCommand):
    doc = "a pane's size for a session's PTY; a declared size wins unless `deliberate` (zoom)"
    op: Literal["resize"] = "resize"
    cols: int = Field(ge=1, le=MAX_SIDE)
    rows: int = Field(ge=1, le=MAX_SIDE)
    deliberate: bool = False


class FocusSession(_Command):
    doc = "the session an operator room types into (none: null); its output goes first"
    op: Literal["focus"] = "focus"
    session: str | None


class SaveScreen(_SessionCommand):
    doc = "write the screen as text and ANSI into the run directory"
    op: Literal["save_screen"] = "save_screen"


class PauseAll(_Command):
    doc = "pause every active session whose name or template matches `pattern` (a glob)"
    op: Literal["pause_all"] = "pause_all"
    pattern: str = Field(default="*", min_length=1)


class ResumeAll(_Command):
    doc = "resume every paused session whose name or template matches `pattern`"
    op: Literal["resume_all"] = "resume_all"
    pattern: str = Field(default="*", min_length=1)


class SetParallel(_Command):
    doc = (
        "change max_parallel (local sessions) live: 1..the local pool size fixes it, "
        "auto hands it to the controller"
    )
    op: Literal["set_parallel"] = "set_parallel"
    value: Annotated[int, Field(ge=1, strict=True)] | Literal["auto"]


Command = Annotated[
    StartAll
    | PauseSession
    | ResumeSession
    | TerminateSession
    | TerminateAll
    | RestartSession
    | StartSession
    | ForkSession
    | AddSession
    | SendInput
    | ResizeSession
    | FocusSession
    | SaveScreen
    | PauseAll
    | ResumeAll
    | SetParallel,
    Field(discriminator="op"),
]
COMMAND_TYPES: tuple[type[_Command], ...] = (
    StartAll, PauseSession, ResumeSession, TerminateSession, TerminateAll, RestartSession,
    StartSession, ForkSession, AddSession, SendInput, ResizeSession, FocusSession, SaveScreen,
    PauseAll, ResumeAll, SetParallel,
)  # fmt: skip
OPS: frozenset[str] = frozenset(t.model_fields["op"].default for t in COMMAND_TYPES)


class Done(BaseModel):
    """The command was carried out; its effect arrives as events."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["done"] = "done"


class Forked(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["forked"] = "forked"
    name: str


class Added(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["added"] = "added"
    name: str


class ScreenSaved(BaseModel):
    """Paths on the engine's host."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["screen_saved"] = "screen_saved"
    text: Path
    ansi: Path


class Named(BaseModel):
    """The sessions a bulk command acted on."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["named"] = "named"
    names: list[str]


CommandResult = Annotated[Done | Forked | Added | ScreenSaved | Named, Field(discriminator="kind")]
_COMMAND: TypeAdapter[Command] = TypeAdapter(Command)
_RESULT: TypeAdapter[CommandResult] = TypeAdapter(CommandResult)


def parse_command(frame: dict[str, Any]) -> Command:
    """The command a wire frame asks for (its `req` and other envelope keys ignored)."""
    body = {k: v for k, v in frame.items() if k != "req"}
    try:
        return _COMMAND.validate_python(body)
    except ValidationError as exc:
        raise InvalidCommandError(_describe(str(frame.get("op")), exc)) from None


def parse_result(wire: object) -> CommandResult:
    return _RESULT.validate_python(wire)


def _describe(op: str, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"] if part != op) or "frame"
        problems.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
    return f"{op}: " + "; ".join(problems)


def command(kind: type[C], **fields: Any) -> C:
    """A command built from fields, or InvalidCommandError naming what is wrong."""
    try:
        return kind(**fields)
    except ValidationError as exc:
        raise InvalidCommandError(_describe(kind.model_fields["op"].default, exc)) from None


class CommandCalls:
    """The commands as methods, written once over `run` for the Engine and RemoteEngine."""

    async def run(self, command: Command) -> CommandResult:
        raise NotImplementedError

    async def start_all(self) -> None:
        await self.run(command(StartAll))

    async def pause(self, name: str) -> None:
        await self.run(command(PauseSession, session=name))

    async def resume(self, name: str) -> None:
        await self.run(command(ResumeSession, session=name))

    async def terminate(self, name: str) -> None:
        await self.run(command(TerminateSession, session=name))

    async def terminate_all(self) -> None:
        await self.run(command(TerminateAll))

    async def restart(self, name: str) -> None:
        await self.run(command(RestartSession, session=name))

    async def start(self, name: str) -> None:
        """Start a session waiting for an operator (autostart = false)."""
        await self.run(command(StartSession, session=name))

    async def fork(self, name: str, overrides: dict[str, Any] | None = None) -> str:
        """The new session's name, chosen by the engine."""
        result = await self.run(command(ForkSession, session=name, overrides=overrides or {}))
        return _expect(result, Forked).name

    async def add(self, table: dict[str, Any]) -> str:
        """A new session from `table`, validated like a deck's; returns its name."""
        return _expect(await self.run(command(AddSession, table=table)), Added).name

    async def send_input(self, name: str, data: bytes) -> None:
        await self.run(command(SendInput, session=name, data=data))

    async def resize(self, name: str, cols: int, rows: int, deliberate: bool = False) -> None:
        fields = {"session": name, "cols": cols, "rows": rows, "deliberate": deliberate}
        await self.run(command(ResizeSession, **fields))

    async def focus(self, name: str | None) -> None:
        """Tell the engine which session this room types into (None: none)."""
        await self.run(command(FocusSession, session=name))

    async def save_screen(self, name: str) -> tuple[Path, Path]:
        saved = _expect(await self.run(command(SaveScreen, session=name)), ScreenSaved)
        return saved.text, saved.ansi

    async def pause_all(self, pattern: str = "*") -> list[str]:
        """The names paused (active sessions whose name or template matches)."""
        return _expect(await self.run(command(PauseAll, pattern=pattern)), Named).names

    async def resume_all(self, pattern: str = "*") -> list[str]:
        return _expect(await self.run(command(ResumeAll, pattern=pattern)), Named).names

    async def set_parallel(self, value: int | str) -> None:
        """1..the local pool size, or "auto"; a ParallelismAdjusted event says so, with the
        reason (sessions on hosts are bounded by each host's pool.size)."""
        await self.run(command(SetParallel, value=value))


R = TypeVar("R")
C = TypeVar("C", bound=_Command)


def _expect(result: object, kind: type[R]) -> R:
    if not isinstance(result, kind):
        raise TypeError(f"expected {kind.__name__}, got {type(result).__name__}")
    return result
