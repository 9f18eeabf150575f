"""Deck conveniences on the command line: the default deck, running a subset of a deck."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

SWARMDECK = [sys.executable, "-m", "tui.cli"]
THREE = (
    "[pool]\nsize = 2\nwarm = 0\n\n"
    '[[session]]\nname = "build"\ncommand = "echo built"\n\n'
    '[[session]]\nname = "test"\ncommand = "echo tested"\ndepends_on = ["build"]\n\n'
    '[[session]]\nname = "lint"\ncommand = "echo linted"\n'
)


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SWARMDECK, *args], cwd=cwd, capture_output=True, text=True, timeout=50)


def _states(run_dir: Path) -> dict[str, str]:
    summary = json.loads((run_dir / "summary.json").read_text())
    return {s["name"]: s["state"] for s in summary["sessions"]}


def test_without_a_deck_swarmdeck_toml_in_the_current_directory_is_used(tmp_path: Path) -> None:
    (tmp_path / "swarmdeck.toml").write_text(THREE)
    assert "swarmdeck.toml: OK (3 sessions" in _cli(tmp_path, "validate").stdout
    out = _cli(tmp_path, "run", "--headless", "--run-dir", "run")
    assert out.returncode == 0, out.stderr
    assert _states(tmp_path / "run") == {"build": "completed", "test": "completed",
                                          "lint": "completed"}  # fmt: skip


def test_without_a_deck_or_swarmdeck_toml_the_error_says_what_to_do(tmp_path: Path) -> None:
    for args in (("run", "--headless"), ("validate",), ("serve",)):
        out = _cli(tmp_path, *args)
        assert out.returncode == 2
        assert f"no deck given and no swarmdeck.toml in {tmp_path}" in out.stderr, out.stderr
        assert "name a deck file, or create swarmdeck.toml here" in out.stderr
    out = _cli(tmp_path, "run", "--headless", "build")
    assert "('build' is neither a deck file nor ending in .toml)" in out.stderr
    assert not (tmp_path / ".swarmdeck").exists()


def test_named_sessions_run_with_what_they_depend_on_and_nothing_else(tmp_path: Path) -> None:
    deck = tmp_path / "ci.toml"
    deck.write_text(THREE)
    out = _cli(tmp_path, "run", "--headless", str(deck), "test", "--run-dir", "run")
    assert out.returncode == 0, out.stderr
    assert _states(tmp_path / "run") == {"build": "completed", "test": "completed"}
    (tmp_path / "swarmdeck.toml").write_text(THREE)  # the deck may be left out
    out = _cli(tmp_path, "run", "--headless", "lint", "--run-dir", "run2")
    assert out.returncode == 0, out.stderr
    assert _states(tmp_path / "run2") == {"lint": "completed"}


def test_an_unknown_session_name_is_refused_before_anything_starts(tmp_path: Path) -> None:
    deck = tmp_path / "ci.toml"
    deck.write_text(THREE)
    out = _cli(tmp_path, "run", "--headless", str(deck), "tset", "--run-dir", "run")
    assert out.returncode == 2
    assert (
        f"{deck}: no session named 'tset' in the deck; did you mean 'test'? "
        "(sessions: build, test, lint)"
    ) in out.stderr
    assert not (tmp_path / "run").exists()


def test_env_file_variables_reach_the_session_and_env_wins_over_them(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "app.env").write_text(
        "# settings\nexport GREETING='hello ${USER}'\nPORT=1\n\nNAME=\"two\\nlines\"\n"
    )
    deck = tmp_path / "conf" / "deck.toml"  # env_file is relative to the deck, not the cwd
    deck.write_text(
        '[[session]]\nname = "show"\nenv_file = "app.env"\nenv = { PORT = "8080" }\n'
        'command = \'printf "%s|%s|%s\\n" "$GREETING" "$PORT" "$NAME"\'\n'
    )
    out = _cli(tmp_path, "run", "--headless", str(deck), "--run-dir", "run")
    assert out.returncode == 0, out.stderr
    screen = (tmp_path / "run" / "sessions" / "show.screen.txt").read_text()
    assert screen.startswith("hello ${USER}|8080|two\nlines\n"), screen


def test_a_bad_env_file_is_refused_naming_each_bad_line(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("A=1\nnot a pair\n\n\nB=2\nC\n")
    deck = tmp_path / "deck.toml"
    deck.write_text(
        '[[session]]\nname = "a"\ncommand = "true"\nenv_file = ".env"\n\n'
        '[[session]]\nname = "b"\ncommand = "true"\nenv_file = "missing.env"\n'
    )
    out = _cli(tmp_path, "validate", str(deck))
    assert out.returncode == 2
    assert (
        f"session[1] (a): env_file {tmp_path / '.env'}: line 2: expected KEY=VALUE, got "
        "'not a pair'; line 6: expected KEY=VALUE, got 'C'"
    ) in out.stderr, out.stderr
    assert f"session[2] (b): env_file {tmp_path / 'missing.env'}: file not found" in out.stderr
