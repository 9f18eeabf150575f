"""config.toml on the command line: loaded once per command, options over the file."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    from tui.user_config import UserConfig


def room_config(args: argparse.Namespace) -> UserConfig | None:
    """The person's config with `--theme` applied, or None after printing every problem."""
    from themes import ThemeError, all_themes
    from tui.user_config import ConfigError, load_config, with_theme

    try:
        all_themes()  # a bad theme file of the person's is refused before a room opens
    except ThemeError as exc:
        print(f"swarmdeck {args.command}: {exc}", file=sys.stderr)
        return None
    try:
        config = load_config()
        if getattr(args, "theme", None):
            config = with_theme(config, args.theme)
    except ConfigError as exc:
        print(f"swarmdeck {args.command}: {exc}", file=sys.stderr)
        return None
    return config
