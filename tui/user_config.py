"""The person's settings: `$XDG_CONFIG_HOME/swarmdeck/config.toml` (default ~/.config).

Per person, not per deck: the room's theme, key bindings over the action table in
tui/actions.py (`[keys] pause = "P"`, `leave_pane = "ctrl+b"`; Textual's key names, several
comma-separated) and where run directories go. A missing file means the defaults; a bad
one is refused with every problem (file: field: what is wrong), before anything starts.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engine import SwarmdeckError
from tui.actions import KEYMAP_NAMES
from tui.attention_alert import AttentionAlert


class ConfigError(SwarmdeckError):
    """config.toml failed validation; `problems` holds one line per problem."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path, self.problems = path, problems
        super().__init__("\n".join(f"{path}: {problem}" for problem in problems))


class UserConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    theme: str | None = Field(None, description="the room's theme (else textual-dark)")
    runs: Path | None = Field(
        None, description="where run directories go (else ./.swarmdeck/runs); ~ expanded"
    )
    keys: dict[str, str] = Field(
        default_factory=dict, description='action name = key(s), e.g. pause = "P"'
    )
    attention: AttentionAlert = Field(
        default_factory=AttentionAlert,
        description="when a session waits for you: bell = true, notify_send = true",
    )

    @field_validator("keys")
    @classmethod
    def _known_actions(cls, keys: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(keys) - KEYMAP_NAMES)
        if unknown:
            names = ", ".join(sorted(KEYMAP_NAMES))
            raise ValueError(f"unknown actions {', '.join(unknown)} (known: {names})")
        empty = sorted(name for name, key in keys.items() if not key.strip(", "))
        if empty:
            raise ValueError(f"no key given for {', '.join(empty)}")
        return keys

    @field_validator("theme")
    @classmethod
    def _known_theme(cls, theme: str | None) -> str | None:
        from themes import load_themes

        names = [t.name for t in load_themes()]
        if theme is not None and theme not in names:
            raise ValueError(f"unknown theme {theme!r} (known: {', '.join(names)})")
        return theme

    @field_validator("runs")
    @classmethod
    def _expand(cls, runs: Path | None) -> Path | None:
        return None if runs is None else runs.expanduser()


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "swarmdeck" / "config.toml"


def load_config(path: Path | None = None) -> UserConfig:
    path = path or config_path()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return UserConfig()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(path, [f"cannot read it: {error}"]) from None
    try:
        config = UserConfig.model_validate(raw)
    except ValidationError as error:
        problems = [f"{'.'.join(map(str, e['loc']))}: {_plain(e['msg'])}" for e in error.errors()]
        raise ConfigError(path, problems) from None
    return config


def with_theme(config: UserConfig, theme: str) -> UserConfig:
    """`--theme NAME` over the file's theme, checked the same way."""
    try:
        return UserConfig.model_validate({**config.model_dump(), "theme": theme})
    except ValidationError as error:
        raise ConfigError("--theme", [_plain(e["msg"]) for e in error.errors()]) from None


def _plain(message: str) -> str:
    return message.removeprefix("Value error, ")
