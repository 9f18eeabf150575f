"""The deck file (TOML) as frozen, validated data.

A deck has an optional ``[pool]`` table, any number of top-level keys of its
own and one ``[[session]]`` table per session. Validation collects *every*
problem and `load_deck` raises one `DeckError` listing them, one line each
(engine/deck/problems.py): ``<field path>: <what was expected>, got <input>``.

To grow the format, add a field to `SessionSpec`, `PoolSpec` or `DeckSpec`;
checks that span several sessions belong in engine/deck/checks.py. Scheduling fields
(priority, depends_on, retries, backoff, critical, replicas, workspace, memory and the
deck's max_parallel, memory_budget, max_failure_rate, min_success) are explained in
docs/scheduling.md; the `[alerts]` table in engine/deck/alert_spec.py and docs/contention.md.

Size: the deck's models with their messages, one model per table, kept together so the
schema and docs/deck-reference.md come from one place.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import tomllib
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from engine.deck.alert_spec import AlertsSpec
from engine.deck.attention_spec import AttentionSpec
from engine.deck.checks import deck_problems, with_problems
from engine.deck.dependencies import Condition  # noqa: TC001 (pydantic needs it)
from engine.deck.durations import Duration, OptionalDuration  # noqa: TC001 (pydantic needs them)
from engine.deck.env_file import read_env_file
from engine.deck.host_spec import HostSpec, warm_within_size
from engine.deck.priorities import PriorityName
from engine.deck.problems import problem_lines
from engine.deck.ready_spec import ReadySpec
from engine.deck.sizes import OptionalMemorySize, parse_size
from engine.errors import DeckError

__all__ = [
    "Backoff",
    "DeckSpec",
    "Dependency",
    "HostSpec",
    "PoolSpec",
    "Priority",
    "ReadySpec",
    "RecordSpec",
    "SessionSpec",
    "WorkQueue",
    "WorkspaceSpec",
    "load_deck",
    "parse_deck",
]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_NAMESPACE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,3}")
_COMMON_SIGNALS = "TERM, INT, HUP, QUIT, KILL, USR1, USR2"

Cols = Annotated[int, Field(ge=2, le=1000)]
Rows = Annotated[int, Field(ge=2, le=500)]
Priority = PriorityName


class _Spec(BaseModel):
    """Strict so TOML's own types are kept: ``size = "4"`` or ``true`` is a mistake."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _context_path(info: ValidationInfo) -> Path | None:
    """The deck file, passed by the loader as validation context."""
    path = info.context.get("path") if isinstance(info.context, dict) else None
    return Path(path) if path is not None else None


class PoolSpec(_Spec):
    """The terminals kept ready for pooled sessions."""

    size: int = Field(default=4, ge=1)
    warm: int = Field(default=2, ge=0)
    recycle_after: int = Field(default=50, ge=1)
    acquire_timeout: Duration = 30.0
    idle_timeout: Duration = 300.0
    shell: str = Field(default="/bin/bash", validate_default=True)
    init: str = ""
    cols: Cols = 120
    rows: Rows = 32
    scrollback: int = Field(default=5000, ge=0)

    @field_validator("warm")
    @classmethod
    def _warm_fits(cls, warm: int, info: ValidationInfo) -> int:
        return warm_within_size(warm, info, "pool.size")

    @field_validator("shell")
    @classmethod
    def _resolve_shell(cls, shell: str) -> str:
        """Resolved once, here, so a missing shell fails at load time, not at spawn."""
        if "/" not in shell:
            found = shutil.which(shell)
            if found is None:
                raise ValueError(f"expected a program found on PATH, got {shell!r}")
            return str(Path(found).absolute())
        if not Path(shell).is_absolute():
            raise ValueError(f"expected an absolute path or a name on PATH, got {shell!r}")
        if not (Path(shell).is_file() and os.access(shell, os.X_OK)):
            raise ValueError(f"expected an executable file, got {shell!r}")
        return shell


def _session_name(value: object) -> object:
    if not isinstance(value, str) or _NAME.fullmatch(value):
        return value
    reserved = "'#' is reserved for replicas; " if "#" in value else ""
    raise ValueError(
        f"{reserved}expected 1-64 letters, digits, '.', '_' or '-' starting with a letter "
        f"or digit, got {value!r}"
    )


def _command(value: object) -> object:
    if isinstance(value, list) and all(isinstance(arg, str) for arg in value):
        program = value[0] if value else ""
    else:
        program = value
    if isinstance(program, str) and program.strip():
        return value
    raise ValueError(f"expected a non-empty command string or list of strings, got {value!r}")


def _signal_number(value: object) -> object:
    """Accept ``"TERM"``, ``"SIGTERM"``, ``"term"`` or ``15``; store the number."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value in signal.valid_signals():
            return value
    elif isinstance(value, str):
        name = value.strip().upper()
        found = signal.Signals.__members__.get(name if name.startswith("SIG") else f"SIG{name}")
        if found is not None:
            return int(found)
    raise ValueError(f"expected a signal name ({_COMMON_SIGNALS}, ...) or number, got {value!r}")


def _host_names(value: object) -> object:
    """A list of hosts must name at least one, each once."""
    if isinstance(value, list):
        if not value:
            raise ValueError("expected a host name or a non-empty list of them, got []")
        repeated = sorted({n for n in value if isinstance(n, str) and value.count(n) > 1})
        if repeated:
            raise ValueError(f"expected each host once, got {', '.join(map(repr, repeated))} twice")
    return value


def _dependency(value: object) -> object:
    """``"build"`` is short for ``{ name = "build", condition = "succeeded" }``."""
    return {"name": value} if isinstance(value, str) else value


class Dependency(_Spec):
    """Start only when session `name` (every replica of it) meets `condition`."""

    name: str
    condition: Condition = "succeeded"


class Backoff(_Spec):
    """Delay before retry n (1-based): initial × factor^(n-1), capped at max, ± jitter."""

    initial: Duration = 1.0
    factor: float = Field(default=2.0, ge=1.0, le=100.0)
    max: Duration = 60.0
    jitter: float = Field(default=0.1, ge=0.0, le=1.0)

    def delay(self, retry: int, spread: float) -> float:
        """`spread` in [-1, 1] picks where in the jitter band this retry falls."""
        base = min(self.max, self.initial * self.factor ** (retry - 1))
        return max(0.0, base * (1 + self.jitter * spread))


def _work_queue(value: object) -> object:
    """``queue = "tasks"`` is short for ``queue = { name = "tasks" }``."""
    return {"name": value} if isinstance(value, str) else value


class WorkQueue(_Spec):
    """A bus work queue with a shard per replica, `NAME.1`..`NAME.N` (docs/bus.md)."""

    # A replica's `swarmdeck bus queue pop NAME` takes from its own shard; with `steal`, a
    # replica whose shard is empty takes the oldest task of the busiest shard. A push to
    # `NAME` goes to the shards in turn; a push to `NAME.i` to replica i's shard.

    name: str
    steal: bool = True

    @field_validator("name")
    @classmethod
    def _queue_name(cls, name: str) -> str:
        if not _QUEUE_NAME.fullmatch(name) or name.rsplit(".", 1)[-1].isdigit():
            raise ValueError(
                "expected a bus queue name: 1-4 words of letters, digits, '_' or '-' joined "
                f"by '.', the last not a number (shards are NAME.1..N), got {name!r}"
            )
        return name


_GIT_REF = re.compile(r"[^\s~^:?*\[\\-][^\s~^:?*\[\\]*")


class WorkspaceSpec(_Spec):
    """A place of the session's own: a git worktree checked out from `base` (any ref:
    branch, tag, commit) on its own branch, or an empty directory outside a repository."""

    isolated: bool = True
    base: str = Field(default="HEAD", validate_default=True)

    @field_validator("base")
    @classmethod
    def _plain_ref(cls, base: str) -> str:
        """Checked against git at start; here only that it cannot be read as an option."""
        if not _GIT_REF.fullmatch(base) or ".." in base:
            raise ValueError(
                f"expected a git ref (branch, tag or commit) such as 'main', got {base!r}"
            )
        return base


def _workspace(value: object) -> object:
    """``"isolated"`` is short for ``{ isolated = true }``, ``"shared"`` for ``false``."""
    if value in ("shared", "isolated"):
        return {"isolated": value == "isolated"}
    if isinstance(value, str):
        raise ValueError(f"expected 'shared', 'isolated' or a table, got {value!r}")
    return value


class SessionSpec(_Spec):
    """One command to run on a terminal, and how the scheduler treats it."""

    name: Annotated[str, BeforeValidator(_session_name)]
    command: Annotated[str | list[str], BeforeValidator(_command)]
    cwd: Path | None = None
    env: dict[str, str] = Field(default_factory=dict)
    terminal: Literal["pooled", "fresh"] = "pooled"
    timeout: OptionalDuration = None
    stop_signal: Annotated[
        int, BeforeValidator(_signal_number, json_schema_input_type=int | str)
    ] = int(signal.SIGTERM)
    stop_grace: Duration = 5.0
    cols: Cols | None = None
    rows: Rows | None = None
    priority: Priority = "normal"
    depends_on: list[
        Annotated[Dependency, BeforeValidator(_dependency, json_schema_input_type=str | Dependency)]
    ] = Field(default_factory=list)
    retries: int = Field(default=0, ge=0, le=100)
    autostart: bool = True
    """false: the session is listed but waits until an operator starts it (the room's
    start key, `swarmdeck start RUN SESSION`); it does not keep a run from ending."""
    restart: Literal["no", "on-failure", "always"] = "no"
    """For long-running services: start it again whenever it ends (always) or fails
    (on-failure), after `backoff`, with no limit; restarts are not failures (docs/scheduling.md)."""
    backoff: Backoff = Field(default_factory=Backoff)
    critical: bool = False
    replicas: int = Field(default=1, ge=1, le=1000)
    workspace: Annotated[
        WorkspaceSpec,
        BeforeValidator(
            _workspace, json_schema_input_type=Literal["shared", "isolated"] | WorkspaceSpec
        ),
    ] = Field(default_factory=lambda: WorkspaceSpec(isolated=False))
    memory: OptionalMemorySize = None
    queue: (
        Annotated[WorkQueue, BeforeValidator(_work_queue, json_schema_input_type=str | WorkQueue)]
        | None
    ) = None
    attention: AttentionSpec = Field(default_factory=AttentionSpec)
    ready: ReadySpec | None = None
    """A service's probe (engine/deck/ready_spec.py): dependents may wait on "ready"."""
    daemon: bool = False
    """A service for the others: it does not hold the run open (it is stopped once every
    session that is not a daemon is final) and that stop is not a failure."""
    env_file: Path | None = None
    """A dotenv file (relative to the deck file) read at load time; `env` wins over it."""
    host: Annotated[str | list[str] | None, BeforeValidator(_host_names)] = None
    """A `[[host]]`'s name to run on over SSH (a list: each attempt starts on the least
    loaded host of it that is up, taking one of that host's pool.size slots); None: this
    machine (docs/hosts.md, docs/scheduling.md "Places")."""

    @model_validator(mode="before")
    @classmethod
    def _merge_env_file(cls, data: object, info: ValidationInfo) -> object:
        """Read once, at load time, so `swarmdeck validate` reports a bad line by number."""
        if not isinstance(data, dict) or not isinstance(data.get("env_file"), str):
            return data
        deck = _context_path(info)
        base = deck.parent if deck is not None else Path.cwd()
        path = (base / Path(data["env_file"]).expanduser()).resolve()
        values = read_env_file(path)
        env = data.get("env", {})
        merged = {**values, **env} if isinstance(env, dict) else env
        return {**data, "env_file": path, "env": merged}

    @field_validator("cwd", mode="before")
    @classmethod
    def _resolve_cwd(cls, value: object, info: ValidationInfo) -> object:
        """Relative to the deck file, so a deck behaves the same from any directory."""
        if not isinstance(value, str | Path):
            return value
        deck = _context_path(info)
        base = deck.parent if deck is not None else Path.cwd()
        resolved = (base / Path(value).expanduser()).resolve()
        if not resolved.is_dir():
            raise ValueError(f"expected an existing directory ({resolved}), got {str(value)!r}")
        return resolved

    @field_validator("restart")
    @classmethod
    def _restart_or_retries(cls, restart: str, info: ValidationInfo) -> str:
        """A restarted service never ends in failure, so retries would never be used."""
        retries = info.data.get("retries")
        if restart != "no" and retries:
            raise ValueError(
                f"restart = {restart!r} restarts it without limit: drop retries = {retries} "
                "(retries are for jobs that should end)"
            )
        return restart

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        bad = [key for key in env if not _ENV_NAME.fullmatch(key)]
        if bad:
            raise ValueError(
                "expected variable names of letters, digits and '_' not starting with a "
                f"digit, got {', '.join(map(repr, bad))}"
            )
        return env

    @property
    def hosts(self) -> tuple[str, ...]:
        """The hosts it may run on, in turn (empty: this machine)."""
        if self.host is None:
            return ()
        return (self.host,) if isinstance(self.host, str) else tuple(self.host)

    def argv(self, shell: str) -> list[str]:
        """A string runs through `shell` (pipes, globs, ``&&``); a list runs as is."""
        if isinstance(self.command, str):
            return [shell, "-c", self.command]
        return list(self.command)


class RecordSpec(_Spec):
    """Recordings (`sessions/NAME.cast`): past max_size bytes one is rotated to NAME.1.cast
    (NAME.1 to NAME.2, ...), keeping `keep` old files; each file plays alone."""

    max_size: Annotated[int, Field(ge=4096)] | None = None
    keep: int = Field(default=3, ge=0, le=1000)

    @field_validator("max_size", mode="before")
    @classmethod
    def _size(cls, value: object) -> object:
        return value if value is None else parse_size(value)

    @property
    def rotation(self) -> tuple[int, int] | None:
        """(max_size, keep), or None: no cap."""
        return None if self.max_size is None else (self.max_size, self.keep)


def _bus_url(value: object) -> object:
    """``nats://`` or ``tls://`` with a host, an optional port and namespace (one word)."""
    if not isinstance(value, str):
        return value
    shown = re.sub(r"//[^/@]*@", "//***@", value)  # never echo a password
    try:
        url = urlsplit(value)
        port = url.port
    except ValueError as error:
        raise ValueError(f"expected a NATS URL, got {shown!r} ({error})") from None
    if url.scheme not in ("nats", "tls") or not url.hostname:
        raise ValueError(f"expected a URL nats://HOST[:PORT] or tls://HOST[:PORT], got {shown!r}")
    namespace = url.path.strip("/")
    if namespace and not _NAMESPACE.fullmatch(namespace):
        raise ValueError(
            f"expected a namespace of letters, digits, '_' or '-' after the port, got {shown!r}"
        )
    if url.query or url.fragment or port == 0:
        raise ValueError(f"expected nats://HOST[:PORT][/NAMESPACE] and nothing more, got {shown!r}")
    return value


class DeckSpec(_Spec):
    """A whole deck; build it with `load_deck` or `parse_deck`, which know its path."""

    name: str = Field(min_length=1)
    pool: PoolSpec = Field(default_factory=PoolSpec)
    max_parallel: Annotated[int, Field(ge=1)] | Literal["auto"] | None = None
    memory_budget: OptionalMemorySize = None
    max_failure_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    failure_window: int = Field(default=10, ge=1)
    min_success: int | None = Field(default=None, ge=0)
    exit_when: Literal["done", "never"] | None = None
    """done: the engine ends once every session is final; never: it serves until stopped.
    None: the command's default (`run --headless`: done; `serve`, `run`: never)."""
    alerts: AlertsSpec = Field(default_factory=AlertsSpec)
    record: RecordSpec = Field(default_factory=RecordSpec)
    bus: Annotated[str, BeforeValidator(_bus_url)] | None = None
    """None: the embedded bus. ``nats://host:4222`` (or ``tls://``, optionally
    ``nats://user:pass@host:4222/NAMESPACE``): the engine also links its bus to that NATS
    server, so sessions of every deck on it share topics, direct messages, broadcasts and
    queues (docs/bus.md, "Bus on NATS"); NAMESPACE (default ``swarmdeck``) keeps decks apart."""
    hosts: list[HostSpec] = Field(default_factory=list, alias="host")
    """`[[host]]` tables: machines sessions run on over SSH (engine/deck/host_spec.py)."""
    sessions: list[SessionSpec] = Field(alias="session")
    _path: Path = PrivateAttr()

    @property
    def path(self) -> Path:
        return self._path

    @property
    def directory(self) -> Path:
        """Where relative paths in the deck start from."""
        return self._path.parent

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: object, info: ValidationInfo) -> object:
        path = _context_path(info)
        if isinstance(data, dict) and "name" not in data and path is not None:
            return {"name": path.stem, **data}
        return data

    @model_validator(mode="after")
    def _attach_path(self, info: ValidationInfo) -> DeckSpec:
        path = _context_path(info)
        if path is None:
            raise ValueError("a deck needs its file path: use load_deck() or parse_deck()")
        self._path = path
        return self

    @property
    def parallel_limit(self) -> int:
        """The fixed concurrency limit (the ceiling when max_parallel is "auto")."""
        return self.max_parallel if isinstance(self.max_parallel, int) else self.pool.size

    @field_validator("max_parallel")
    @classmethod
    def _parallel_fits(cls, value: int | str | None, info: ValidationInfo) -> int | str | None:
        """Above the pool size, sessions would queue in the pool and hit acquire_timeout."""
        pool = info.data.get("pool")
        if isinstance(value, int) and pool is not None and value > pool.size:
            raise ValueError(
                f"must not exceed pool.size ({pool.size}), got {value} (it bounds the sessions "
                "on this machine; a [[host]]'s own pool.size bounds the sessions there)"
            )
        return value

    @field_validator("hosts")
    @classmethod
    def _unique_hosts(cls, hosts: list[HostSpec]) -> list[HostSpec]:
        names = [host.name for host in hosts]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(
                f"expected each [[host]] name once, got {', '.join(map(repr, repeated))} twice"
            )
        return hosts

    def host_named(self, name: str) -> HostSpec:
        """The `[[host]]` a session names (the deck's checks made sure it exists)."""
        return next(host for host in self.hosts if host.name == name)

    @field_validator("sessions", mode="wrap")
    @classmethod
    def _check_sessions(
        cls, value: object, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> object:
        """Deck-wide checks run even when single sessions fail, so all problems show at once."""
        problems = deck_problems(value, info.data)
        try:
            sessions = handler(value)
        except ValidationError as error:
            raise with_problems(error, problems) from None
        if problems:
            raise ValidationError.from_exception_data("DeckSpec", problems)
        return sessions


# --- loading and reporting ------------------------------------------------------------


def load_deck(path: str | Path) -> DeckSpec:
    """Read and validate a deck file; any problem raises DeckError listing all of them."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DeckError(str(path), ["file not found"]) from None
    except IsADirectoryError:
        raise DeckError(str(path), ["is a directory, expected a deck file (.toml)"]) from None
    except UnicodeDecodeError as error:
        raise DeckError(str(path), [f"not UTF-8 text ({error.reason})"]) from None
    except OSError as error:
        raise DeckError(str(path), [f"cannot read the file: {error.strerror}"]) from None
    return parse_deck(text, Path(path))


def parse_deck(text: str, path: Path) -> DeckSpec:
    """Validate deck text as if read from `path` (which anchors relative paths)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise DeckError(str(path), [f"invalid TOML: {error}"]) from None
    try:
        return DeckSpec.model_validate(raw, context={"path": path.absolute()})
    except ValidationError as error:
        raise DeckError(str(path), problem_lines(error.errors(), raw, DeckSpec)) from None
