"""swarmdeck's look: Textual themes loaded from TOML data and the `.tcss` stylesheets.

Colours live only in the `*.toml` theme files; stylesheets refer to theme variables
(`$state-paused`, `$pool-alert`, `$ansi-red`…), so Python code never holds a colour.
"""

from __future__ import annotations

from themes.definitions import (
    DEFAULT_THEME,
    STYLESHEETS,
    ThemeError,
    all_themes,
    load_themes,
    user_theme_dir,
)

__all__ = [
    "DEFAULT_THEME",
    "STYLESHEETS",
    "ThemeError",
    "all_themes",
    "load_themes",
    "user_theme_dir",
]
