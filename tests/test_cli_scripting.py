"""Scripting a served engine from the shell: every command is the real CLI in a subprocess,
against a real `swarmdeck serve`, with the room's roles."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from tests.cli_support import Served, served

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

DECK = """
[pool]
size = 4
warm = 1

[[session]]
name = "shell"
command = "exec bash --norc --noprofile -i"

[[session]]
name = "colours"
command = '''for i in $(seq 1 60); do echo line-$i; done
printf '\\033[31mred\\033[0m\\n'; exec sleep 120'''
"""


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Served]:
    with served(DECK, tmp_path) as engine:
        yield engine


def _states(svc: Served) -> dict[str, str]:
    infos = json.loads(svc.cli("sessions", "svc", "--json").stdout)
    return {info["name"]: info["state"] for info in infos}


def test_ls_and_sessions_answer_as_json_for_scripts(svc: Served) -> None:
    (entry,) = json.loads(svc.cli("ls", "--json").stdout)
    assert entry["deck"] == "svc"
    assert entry["pid"] == svc.process.pid
    svc.until(lambda: _states(svc) == {"shell": "active", "colours": "active"})
    table = svc.cli("sessions", "svc").stdout.splitlines()
    assert table[0].split() == ["SESSION", "STATE", "PID", "TRIES", "WAITING", "REASON"]
    assert [row.split()[:2] for row in table[1:]] == [["shell", "active"], ["colours", "active"]]


def test_send_types_into_a_shell_and_capture_shows_what_it_printed(svc: Served) -> None:
    svc.until(lambda: "bash-" in svc.cli("capture", "svc", "shell").stdout)
    svc.cli("send", "svc", "shell", "echo sum-$((40+2))", "--enter")
    svc.until(lambda: "sum-42" in svc.cli("capture", "svc", "shell").stdout.splitlines())


def test_capture_keeps_colours_with_ansi_and_scrolled_off_lines_with_history(
    svc: Served,
) -> None:
    svc.until(lambda: "red" in svc.cli("capture", "svc", "colours").stdout)
    plain = svc.cli("capture", "svc", "colours").stdout.splitlines()
    assert "line-1" not in plain  # scrolled off the screen
    assert plain[-1] == "red"
    assert "\x1b[31mred\x1b[0m" in svc.cli("capture", "svc", "colours", "--ansi").stdout
    history = svc.cli("capture", "svc", "colours", "--history").stdout.splitlines()
    assert history == [*(f"line-{i}" for i in range(1, 61)), "red"]


def test_pause_and_resume_act_on_each_session_named_and_say_which_failed(svc: Served) -> None:
    svc.until(lambda: _states(svc) == {"shell": "active", "colours": "active"})
    svc.cli("pause", "svc", "shell", "colours")
    assert _states(svc) == {"shell": "paused", "colours": "paused"}
    both = svc.cli("resume", "svc", "nope", "shell", check=False)
    assert both.returncode == 1
    assert "nope: no session named 'nope' (known: shell, colours)" in both.stderr
    assert _states(svc) == {"shell": "active", "colours": "paused"}  # the others still done


def test_terminate_then_restart_brings_a_session_back(svc: Served) -> None:
    svc.until(lambda: _states(svc)["colours"] == "active")
    svc.cli("terminate", "svc", "colours")
    assert _states(svc)["colours"] == "terminated"
    svc.cli("restart", "svc", "colours")
    svc.until(lambda: _states(svc)["colours"] == "active")


def test_a_viewer_reads_but_the_engine_refuses_its_control(svc: Served) -> None:
    svc.until(lambda: _states(svc)["shell"] == "active")
    for command in (("pause", "svc", "shell"), ("send", "svc", "shell", "x")):
        refused = svc.cli(*command, "--viewer", check=False)
        assert refused.returncode == 1
        assert "refused, this client is a viewer (read-only)" in refused.stderr
    add = ("add", "svc", "--name", "x", "--command", "true", "--role", "viewer")
    added = svc.cli(*add, check=False)
    assert added.returncode == 1
    assert "refused" in added.stderr
    assert _states(svc) == {"shell": "active", "colours": "active"}


def test_add_starts_a_new_session_and_logs_follow_its_output_until_it_ends(
    svc: Served,
) -> None:
    command = "echo first; sleep 0.5; echo second $GREETING"
    added = svc.cli("add", "svc", "--name", "late", "--command", command, "--env", "GREETING=hi")
    assert added.stdout.strip() == "late"
    followed = svc.cli("logs", "svc", "late", "-f")
    assert followed.stdout.replace("\r\n", "\n").endswith("first\nsecond hi\n")
    assert _states(svc)["late"] == "completed"
    again = svc.cli("logs", "svc", "late")  # the whole recording, without following
    assert again.stdout == followed.stdout


def test_add_says_what_is_wrong_with_a_bad_session(svc: Served) -> None:
    taken = svc.cli("add", "svc", "--name", "shell", "--command", "true", check=False)
    assert taken.returncode == 1
    assert "cannot add: a session named 'shell' exists" in taken.stderr
    add = ("add", "svc", "--name", "y", "--command", "true", "--env", "NOEQ")
    bad_env = svc.cli(*add, check=False)
    assert "--env 'NOEQ': expected KEY=VALUE" in bad_env.stderr
