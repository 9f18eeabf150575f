"""`env_file = ".env"`: a session's variables from a dotenv file, read strictly.

python-dotenv's own loader skips a line it cannot parse with a logged warning; a deck
should rather refuse it, so its parser is used directly and every bad line is reported
with its number. Values are taken as written: ``${VAR}`` is not expanded.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from dotenv.parser import parse_stream

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["read_env_file"]


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE pairs in file order (a later key wins); ValueError lists every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"env_file {path}: file not found") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"env_file {path}: not UTF-8 text ({error.reason})") from None
    except OSError as error:
        raise ValueError(f"env_file {path}: cannot read it: {error.strerror}") from None
    values: dict[str, str] = {}
    problems: list[str] = []
    for binding in parse_stream(io.StringIO(text)):
        original = binding.original.string
        # a binding's text starts with the blank lines before it; its number is theirs
        line = binding.original.line + original[: len(original) - len(original.lstrip())].count(
            "\n"
        )
        if binding.error or (binding.key is not None and binding.value is None):
            shown = original.strip().splitlines()[0] if original.strip() else original
            problems.append(f"line {line}: expected KEY=VALUE, got {shown[:60]!r}")
        elif binding.key is not None and binding.value is not None:
            values[binding.key] = binding.value
    if problems:
        raise ValueError(f"env_file {path}: " + "; ".join(problems))
    return values
