"""The swarmdeck command: validate, and headless runs ending every way they can."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

SWARMDECK = [sys.executable, "-m", "tui.cli"]


def _deck(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "deck.toml"
    path.write_text("[pool]\nsize = 2\nwarm = 1\n\n" + body)
    return path


def test_validate_prints_ok_for_a_good_deck(tmp_path: Path) -> None:
    deck = _deck(tmp_path, '[[session]]\nname = "a"\ncommand = "true"\n')
    out = subprocess.run([*SWARMDECK, "validate", str(deck)], capture_output=True, text=True)
    assert out.returncode == 0
    assert "OK (1 session, pool of 2)" in out.stdout


def test_version_and_top_level_help_naming_the_bus() -> None:
    version = subprocess.run([*SWARMDECK, "--version"], capture_output=True, text=True)
    assert version.returncode == 0
    assert version.stdout.startswith("swarmdeck 0.")
    usage = subprocess.run([*SWARMDECK, "--help"], capture_output=True, text=True).stdout
    assert "bus" in usage.split("COMMAND", 2)[-1]


def test_validate_lists_every_problem_with_file_and_field_and_exits_2(tmp_path: Path) -> None:
    deck = _deck(
        tmp_path,
        '[[session]]\nname = "a"\ncomand = "x"\ntimeout = "soon"\n\n'
        '[[session]]\nname = "a"\ncommand = "true"\n',
    )
    out = subprocess.run([*SWARMDECK, "validate", str(deck)], capture_output=True, text=True)
    assert out.returncode == 2
    lines = out.stderr.splitlines()
    assert all(line.startswith(str(deck)) for line in lines)
    text = out.stderr
    assert "session[1] (a).comand: unknown key; did you mean 'command'?" in text
    assert "session[1] (a).timeout: expected a duration" in text
    assert "duplicate name 'a'" in text


def test_validate_speaks_the_deck_not_pydantic_for_wrong_types(tmp_path: Path) -> None:
    deck = tmp_path / "deck.toml"
    deck.write_text(
        'max_parallel = "lots"\nexit_when = 3\n[pool]\nsize = "4"\n'
        '[[session]]\nname = "a"\ncommand = 5\ncwd = 3\ncols = 1.5\n'
        'depends_on = [{ name = 3, condition = "maybe" }, 4]\nready = { port = "x" }\n'
    )
    out = subprocess.run([*SWARMDECK, "validate", str(deck)], capture_output=True, text=True)
    assert out.returncode == 2
    text = out.stderr
    for leak in ("constrained-int", "literal[", "pydantic", "instance of", "Input should"):
        assert leak not in text, text
    assert f"{deck}: max_parallel: expected an integer or 'auto', got 'lots'" in text
    assert f"{deck}: exit_when: expected 'done' or 'never', got 3" in text
    assert f"{deck}: pool.size: expected an integer, got '4'" in text
    assert f"{deck}: session[1] (a).cwd: expected a string, got 3" in text
    assert f"{deck}: session[1] (a).cols: expected an integer, got 1.5" in text
    assert f"{deck}: session[1] (a).depends_on[1].condition: expected 'started'," in text
    assert f"{deck}: session[1] (a).depends_on[2]: expected a table, got 4" in text
    assert f"{deck}: session[1] (a).ready.port: expected an integer, got 'x'" in text


def test_validate_counts_one_problem_in_the_singular(tmp_path: Path) -> None:
    deck = _deck(tmp_path, '[[session]]\nname = "a"\ncommand = "true"\nretries = -1\n')
    out = subprocess.run([*SWARMDECK, "validate", str(deck)], capture_output=True, text=True)
    assert f"{deck}: invalid deck (1 problem)\n" in out.stderr


def test_a_headless_run_exits_non_zero_when_a_session_fails(tmp_path: Path) -> None:
    deck = _deck(
        tmp_path,
        '[[session]]\nname = "good"\ncommand = "echo fine"\n\n'
        '[[session]]\nname = "bad"\ncommand = "echo oops; exit 4"\n',
    )
    run_dir = tmp_path / "run"
    out = subprocess.run(
        [*SWARMDECK, "run", "--headless", str(deck), "--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1, out.stderr
    assert "bad              failed     exit 4" in out.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["ok"] is False
    states = {s["name"]: s["state"] for s in summary["sessions"]}
    assert states == {"good": "completed", "bad": "failed"}
    assert (run_dir / "sessions" / "bad.screen.txt").read_text().startswith("oops")
    assert (run_dir / "sessions" / "good.cast").exists()


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_to_the_process_group_stops_every_session_with_the_verdict_stopped(
    tmp_path: Path, signum: int, code: int
) -> None:
    deck = _deck(
        tmp_path,
        '[[session]]\nname = "long"\ncommand = "echo started; sleep 300"\n\n'
        '[[session]]\nname = "fresh"\ncommand = "sleep 300"\nterminal = "fresh"\n',
    )
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [*SWARMDECK, "run", "--headless", str(deck), "--run-dir", str(run_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        deadline = time.monotonic() + 20
        while (
            not (run_dir / "sessions" / "long.cast").exists()
            or b"started" not in (run_dir / "sessions" / "long.cast").read_bytes()
        ):
            assert time.monotonic() < deadline, "the session never started"
            time.sleep(0.05)
        os.killpg(proc.pid, signum)  # what Ctrl-C does: the relay gets it too
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code
    summary = json.loads((run_dir / "summary.json").read_text())
    assert {s["state"] for s in summary["sessions"]} == {"terminated"}
    assert summary["verdict"]["outcome"] == "stopped"
    assert "stopping every session" in out
    assert "verdict: stopped — stopped by operator: 0 of 2 sessions had completed" in out
    assert "relay" not in err, err


def test_headless_output_to_a_log_is_plain_whole_lines_whatever_their_length(
    tmp_path: Path,
) -> None:
    name = "a-session-with-a-name-much-longer-than-any-table-column"
    deck = _deck(tmp_path, f'[[session]]\nname = "{name}"\ncommand = "exit 5"\n')
    run_dir = tmp_path / ("deep-" * 12) / "run"  # a path longer than 80 columns
    out = subprocess.run(
        [*SWARMDECK, "run", "--headless", str(deck), "--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert out.returncode == 1, out.stderr
    lines = out.stdout.splitlines()
    assert f"swarmdeck: run directory {run_dir}" in lines
    assert f"summary: {name} state=failed tries=1 exit=5" in out.stdout
    assert any(line.endswith(f" {name:<16} failed     exit 5") for line in lines), lines
    assert not any("…" in line or "┃" in line for line in lines), lines


def test_run_without_a_terminal_refuses_before_starting_anything(tmp_path: Path) -> None:
    deck = _deck(tmp_path, '[[session]]\nname = "a"\ncommand = "exec sleep 60"\n')
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    env = {**os.environ, "SWARMDECK_RUNTIME_DIR": str(runtime)}
    out = subprocess.run(
        [*SWARMDECK, "run", str(deck), "--run-dir", str(tmp_path / "run")],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=50,
    )
    assert out.returncode == 2
    assert "needs a terminal on stdin and stdout; nothing was started" in out.stderr
    assert f"swarmdeck run --headless {deck}" in out.stderr
    assert out.stdout == ""
    assert not (tmp_path / "run").exists()  # no engine: no run directory, no registration
    assert not list(runtime.glob("*.json"))


def test_a_bad_config_file_is_refused_with_every_problem_before_anything_starts(
    tmp_path: Path,
) -> None:
    deck = _deck(tmp_path, '[[session]]\nname = "a"\ncommand = "exec sleep 60"\n')
    config = tmp_path / "xdg" / "swarmdeck" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('theme = "nope"\n[keys]\npuase = "P"\nleave_pane = ""\n')
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    run = [*SWARMDECK, "run", str(deck), "--run-dir", str(tmp_path / "run")]
    out = subprocess.run(run, capture_output=True, text=True, env=env, timeout=50)
    assert out.returncode == 2
    assert f"{config}: theme: unknown theme 'nope' (known: " in out.stderr
    assert f"{config}: keys: unknown actions puase (known: " in out.stderr
    assert not (tmp_path / "run").exists()
    config.write_text('[keys]\npause = "P"\n')
    themed = subprocess.run([*run, "--theme", "nope"], capture_output=True, text=True, env=env)
    assert themed.returncode == 2
    assert "--theme: unknown theme 'nope' (known: " in themed.stderr


def test_run_directories_go_where_the_config_says(tmp_path: Path) -> None:
    deck = _deck(tmp_path, '[[session]]\nname = "a"\ncommand = "echo fine"\n')
    config = tmp_path / "xdg" / "swarmdeck" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'runs = "{tmp_path / "runs"}"\n')
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    out = subprocess.run(
        [*SWARMDECK, "run", "--headless", str(deck)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=50,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith("deck-")
    assert (run_dir / "summary.json").exists()
    assert not (tmp_path / ".swarmdeck").exists()


def test_completion_scripts_come_from_the_parser_and_know_every_command() -> None:
    out = subprocess.run(
        [*SWARMDECK, "completion", "bash"], capture_output=True, text=True, check=True
    )
    for command in ("run", "attach", "sessions", "capture", "logs", "schema"):
        assert command in out.stdout
    check = subprocess.run(["bash", "-n"], input=out.stdout, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr  # a script bash accepts


def test_a_non_linux_system_gets_a_clear_error_at_start() -> None:
    code = "import sys; sys.platform = 'darwin'; from tui.cli import main; sys.exit(main(['ls']))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr == "swarmdeck: runs on Linux only (this is darwin)\n"
