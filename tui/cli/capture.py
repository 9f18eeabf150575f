"""Screens as text for `swarmdeck capture`: plain, or with SGR escapes (`--ansi`).

Escapes come from Rich (Style.render), which the room already depends on: the engine's
colours are kept as the program chose them (16, 256 or truecolor), never themed, so a
capture replayed with `cat` looks as it did in the session's terminal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.color import Color, ColorSystem
from rich.style import Style as RichStyle

from engine import line_text

if TYPE_CHECKING:
    from collections.abc import Iterable

    from engine import ColorValue, Style, StyledLine


def text_lines(lines: Iterable[StyledLine]) -> list[str]:
    return [line_text(line).rstrip() for line in lines]


def ansi_lines(lines: Iterable[StyledLine]) -> list[str]:
    """Each line's runs with their SGR escapes, ending in a reset (Rich's own)."""
    styles: dict[Style, RichStyle] = {}
    out = []
    for line in lines:
        runs = list(line)
        while runs and not runs[-1][0].strip() and runs[-1][1].bg is None:
            runs.pop()  # trailing blanks in the default background carry nothing
        if runs and runs[-1][1].bg is None:
            runs[-1] = (runs[-1][0].rstrip(), runs[-1][1])
        parts = []
        for text, style in runs:
            rich = styles.get(style) or styles.setdefault(style, _rich(style))
            parts.append(rich.render(text, color_system=ColorSystem.TRUECOLOR))
        out.append("".join(parts))
    return out


def _rich(style: Style) -> RichStyle:
    return RichStyle(
        color=_colour(style.fg),
        bgcolor=_colour(style.bg),
        bold=style.bold,
        dim=style.faint,
        italic=style.italic,
        underline=style.underline,
        strike=style.strikethrough,
        blink=style.blink,
        reverse=style.inverse,
    )


def _colour(value: ColorValue) -> Color | None:
    if value is None:
        return None
    if isinstance(value, int):
        return Color.from_ansi(value)
    return Color.parse(value)
