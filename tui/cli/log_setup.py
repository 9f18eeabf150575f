"""`--log-level` and `--log-file`: Python logging configured once, for every command.

Engine and room modules log through `logging.getLogger(__name__)` and never configure it;
the command does, here, right after parsing. Without options warnings and errors go to
stderr, as before. A background engine that `swarmdeck run` starts is given the same
options (`forwarded`), so its log goes where the person asked.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

LEVELS = ("debug", "info", "warning", "error")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_forwarded: list[str] = []


def configure_logging(level: str, file: Path | None) -> str | None:
    """Set the root logger up; None, or why the log file cannot be used."""
    handler: logging.Handler
    if file is not None:
        try:
            handler = logging.FileHandler(file, encoding="utf-8")
        except OSError as exc:
            return f"--log-file {file}: {exc.strerror or exc}"
        _forwarded[:] = ["--log-file", str(file.absolute())]
    else:
        handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    _forwarded[:0] = ["--log-level", level]
    return None


def forwarded() -> list[str]:
    """The options to give a swarmdeck process started from this one."""
    return list(_forwarded)
