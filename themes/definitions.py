"""Theme files (`themes/*.toml`) validated by pydantic and turned into Textual `Theme`s.

A theme file names Textual's base colours plus swarmdeck's own variables: one per session
state, the pool and bus colours and the 16 ANSI colours terminal panes map through. A
missing variable is an error at load time, not a silently unstyled widget.

A person's own themes are the same TOML files in `$XDG_DATA_HOME/swarmdeck/themes/`
(default ~/.local/share/swarmdeck/themes/); one may say `extends = "swarmdeck-dark"` and
give only what differs (its `[variables]` are merged over the base's). A bad one is
refused naming its file, before a room opens.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from textual.theme import Theme

HERE = Path(__file__).parent
DEFAULT_THEME = "swarmdeck-dark"
STYLESHEETS: tuple[Path, ...] = tuple(
    HERE / name for name in ("layout.tcss", "panes.tcss", "panels.tcss", "dialogs.tcss")
)
ANSI_NAMES = ("black", "red", "green", "yellow", "blue", "magenta", "cyan", "white")
REQUIRED_VARIABLES: frozenset[str] = frozenset(
    [f"ansi-{n}" for n in ANSI_NAMES]
    + [f"ansi-bright-{n}" for n in ANSI_NAMES]
    + ["terminal-foreground", "terminal-background", "terminal-cursor"]
    + [f"state-{s}" for s in ("queued", "spawning", "active", "paused")]
    + [f"state-{s}" for s in ("completed", "failed", "terminated", "skipped", "lost")]
    + ["pool-gauge", "pool-spark", "pool-alert", "bus-topic", "bus-direct", "bus-dead"]
)


class ThemeSpec(BaseModel):
    """One theme file; unknown keys are rejected so typos do not pass unnoticed."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    dark: bool
    primary: str
    secondary: str
    accent: str
    warning: str
    error: str
    success: str
    foreground: str
    background: str
    surface: str
    panel: str
    variables: dict[str, str]

    def to_theme(self) -> Theme:
        missing = REQUIRED_VARIABLES - self.variables.keys()
        if missing:
            raise ValueError(f"theme {self.name!r} lacks variables: {', '.join(sorted(missing))}")
        fields = self.model_dump()
        return Theme(**fields)


class ThemeError(ValueError):
    """A person's theme file is unreadable or incomplete (the message names the file)."""


def user_theme_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "swarmdeck" / "themes"


def load_themes(directory: Path = HERE, user: Path | None = None) -> list[Theme]:
    """Every `*.toml` theme in `directory`, default first, then those in `user` (a
    person's, see the module doc); ThemeError for a bad one of theirs."""
    specs = [
        ThemeSpec.model_validate(tomllib.loads(p.read_text())) for p in directory.glob("*.toml")
    ]
    specs.sort(key=lambda spec: (spec.name != DEFAULT_THEME, spec.name))
    themes = [spec.to_theme() for spec in specs]
    if user is not None and user.is_dir():
        built_in = {spec.name: spec for spec in specs}
        themes += [_user_theme(path, built_in) for path in sorted(user.glob("*.toml"))]
    return themes


def all_themes() -> list[Theme]:
    """The built-in themes and the person's."""
    return load_themes(HERE, user_theme_dir())


def _user_theme(path: Path, built_in: dict[str, ThemeSpec]) -> Theme:
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ThemeError(f"{path}: cannot read it: {error}") from None
    base_name = raw.pop("extends", None)
    if base_name is not None:
        base = built_in.get(base_name) if isinstance(base_name, str) else None
        if base is None:
            known = ", ".join(built_in)
            raise ThemeError(f"{path}: extends: unknown theme {base_name!r} (known: {known})")
        variables = {**base.variables, **raw.get("variables", {})}
        raw = {**base.model_dump(), **raw, "variables": variables}
    if raw.get("name") in built_in:
        raise ThemeError(f"{path}: name {raw['name']!r} is a built-in theme's; choose another")
    try:
        return ThemeSpec.model_validate(raw).to_theme()
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'theme'}: {e['msg']}" for e in error.errors()
        )
        raise ThemeError(f"{path}: {problems}") from None
    except ValueError as error:
        raise ThemeError(f"{path}: {error}") from None
