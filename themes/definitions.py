"""Theme files (`themes/*.toml`) validated by pydantic and turned into Textual `Theme`s.

A theme file names Textual's base colours plus swarmdeck's own variables: one per session
state, the pool and bus colours and the 16 ANSI colours terminal panes map through. A
missing variable is an error at load time, not a silently unstyled widget.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict
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
    + [f"state-{s}" for s in ("completed", "failed", "terminated", "skipped")]
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


def load_themes(directory: Path = HERE) -> list[Theme]:
    """Every `*.toml` theme in `directory`, default first."""
    specs = [
        ThemeSpec.model_validate(tomllib.loads(p.read_text())) for p in directory.glob("*.toml")
    ]
    specs.sort(key=lambda spec: (spec.name != DEFAULT_THEME, spec.name))
    return [spec.to_theme() for spec in specs]
