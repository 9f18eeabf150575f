"""swarmdeck's own variables for any Textual theme, derived from that theme's colours.

The palette offers every registered theme, Textual's built-ins (nord, gruvbox…) included,
and those lack the variables swarmdeck's stylesheets and panes use (`$terminal-background`,
`$state-paused`, `$ansi-red`…): referring to one is a stylesheet error that ends the app.
So each variable follows a colour every theme has. The 16 ANSI colours come from the
terminal theme Textual pairs with the theme (dark or light), the rest from the theme's
semantic colours, as a table. A theme's own values win: swarmdeck's files define them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.color import Color

from themes.definitions import ANSI_NAMES, REQUIRED_VARIABLES

if TYPE_CHECKING:
    from rich.color_triplet import ColorTriplet
    from rich.terminal_theme import TerminalTheme
    from textual.theme import Theme

ANSI_VARIABLES: tuple[str, ...] = tuple(f"ansi-{n}" for n in ANSI_NAMES) + tuple(
    f"ansi-bright-{n}" for n in ANSI_NAMES
)
MUTED = "muted"
"""The theme's foreground halfway to its background: queued and skipped are quiet."""
SOURCES: dict[str, str] = {
    "terminal-foreground": "foreground",
    "terminal-background": "background",
    "terminal-cursor": "accent",
    "state-queued": MUTED,
    "state-spawning": "ansi-cyan",
    "state-active": "success",
    "state-paused": "warning",
    "state-completed": "primary",
    "state-failed": "error",
    "state-terminated": "ansi-magenta",
    "state-skipped": MUTED,
    "state-lost": "ansi-yellow",
    "pool-gauge": "primary",
    "pool-spark": "success",
    "pool-alert": "error",
    "bus-topic": "ansi-cyan",
    "bus-direct": "ansi-magenta",
    "bus-dead": "error",
}
"""Each swarmdeck variable (other than the ANSI colours) and the colour it follows."""
BASES = ("primary", "accent", "warning", "error", "success")

assert set(SOURCES) | set(ANSI_VARIABLES) == REQUIRED_VARIABLES, "a variable lacks a source"


def derived_variables(theme: Theme, terminal: TerminalTheme) -> dict[str, str]:
    """Every variable swarmdeck's look needs, as `#rrggbb`, for `theme` shown with
    `terminal`'s ANSI colours (what Textual maps `ansi_*` colours through)."""
    system = theme.to_color_system().generate()
    background = _solid(system["background"], terminal, _rgb(terminal.background_color))
    foreground = _solid(system["foreground"], terminal, _rgb(terminal.foreground_color))
    colours = {name: _rgb(terminal.ansi_colors[i]) for i, name in enumerate(ANSI_VARIABLES)}
    colours |= {name: _solid(system[name], terminal, foreground, background) for name in BASES}
    colours |= {"background": background, "foreground": foreground}
    colours[MUTED] = background.blend(foreground, 0.5)
    return {name: colours[SOURCES.get(name, name)].hex for name in sorted(REQUIRED_VARIABLES)}


def _solid(
    value: str, terminal: TerminalTheme, default: Color, under: Color | None = None
) -> Color:
    """`value` as an opaque RGB colour: ANSI colours through `terminal` (the terminal's
    default colour as `default`), translucent ones over `under`."""
    colour = Color.parse(value)
    if colour.ansi is not None:
        return default if colour.ansi < 0 else _rgb(terminal.ansi_colors[colour.ansi])
    if colour.a < 1:
        return (under or default) + colour
    return colour


def _rgb(triplet: ColorTriplet) -> Color:
    return Color(triplet.red, triplet.green, triplet.blue)
