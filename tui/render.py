"""Pure conversion of the engine's styled lines into Textual strips, colours via the theme.

The 16 ANSI colours and the default foreground/background come from theme variables, so
a pane follows the theme like every other widget; 256-colour and truecolor values are
exact (xterm's palette for 16–255). Styles are cached per engine `Style`, so a frame
converts runs, never cells.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.color import Color
from rich.segment import Segment
from rich.style import Style as RichStyle
from textual.strip import Strip

from engine import line_text as line_text  # re-exported: panes search lines by text
from themes.definitions import ANSI_NAMES

if TYPE_CHECKING:
    from collections.abc import Mapping

    from engine import ColorValue, Style, StyledLine

STYLE_CACHE = 4096
"""Converted styles kept per palette; real screens use a few dozen."""
ANSI_VARIABLES: tuple[str, ...] = tuple(f"ansi-{n}" for n in ANSI_NAMES) + tuple(
    f"ansi-bright-{n}" for n in ANSI_NAMES
)


class Palette:
    """Theme colours for one theme, plus a cache of converted styles."""

    def __init__(self, variables: Mapping[str, str]) -> None:
        self.ansi = tuple(Color.parse(variables[name]) for name in ANSI_VARIABLES)
        self.foreground = Color.parse(variables["terminal-foreground"])
        self.background = Color.parse(variables["terminal-background"])
        self.cursor = RichStyle(reverse=True, color=Color.parse(variables["terminal-cursor"]))
        self.base = RichStyle(color=self.foreground, bgcolor=self.background)
        self._styles: dict[Style, RichStyle] = {}

    def color(self, value: ColorValue, default: Color) -> Color:
        if value is None:
            return default
        if isinstance(value, int):
            if value < 16:
                return self.ansi[value]
            return Color.from_triplet(Color.from_ansi(value).get_truecolor())
        return Color.parse(value)

    def style(self, style: Style) -> RichStyle:
        cached = self._styles.get(style)
        if cached is None:
            if len(self._styles) >= STYLE_CACHE:  # truecolor gradients: keep memory bounded
                self._styles.clear()
            cached = self._styles[style] = self._convert(style)
        return cached

    def _convert(self, style: Style) -> RichStyle:
        fg_value = style.fg
        if style.bold and isinstance(fg_value, int) and fg_value < 8:
            fg_value += 8  # xterm's bold-as-bright for the 8 basic colours
        fg = self.color(fg_value, self.foreground)
        bg = self.color(style.bg, self.background)
        if style.inverse:
            fg, bg = bg, fg
        return RichStyle(
            color=fg,
            bgcolor=bg,
            bold=style.bold,
            dim=style.faint,
            italic=style.italic,
            underline=style.underline,
            strike=style.strikethrough,
            blink=style.blink,
        )


def line_strip(line: StyledLine, width: int, palette: Palette) -> Strip:
    """One strip exactly `width` cells wide: cropped or padded with the terminal background."""
    segments = [Segment(text, palette.style(style)) for text, style in line if text]
    return Strip(segments).adjust_cell_length(width, palette.base)


def highlight(strip: Strip, start: int, end: int, style: RichStyle) -> Strip:
    """`strip` with cells [start, end) restyled (the cursor, a search match)."""
    if end <= start or start >= strip.cell_length:
        return strip
    before, middle, after = strip.divide([start, min(end, strip.cell_length), strip.cell_length])
    marked = Strip([Segment(text, (s or RichStyle()) + style) for text, s, _ in middle])
    return Strip.join([before, marked, after])
