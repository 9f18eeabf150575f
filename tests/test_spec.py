"""Deck files: what loads, and how every kind of mistake is reported."""

from __future__ import annotations

import os
import signal
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.deck.durations import parse_duration
from engine.deck.spec import DeckSpec, PoolSpec, SessionSpec, load_deck, parse_deck
from engine.errors import DeckError

REPO = Path(__file__).resolve().parents[1]
ONE_SESSION = '[[session]]\nname = "web"\ncommand = "serve"\n'


def deck(text: str, directory: Path = Path("/decks")) -> DeckSpec:
    return parse_deck(textwrap.dedent(text), directory / "deck.toml")


def problems(text: str, directory: Path = Path("/decks")) -> list[str]:
    with pytest.raises(DeckError) as caught:
        deck(text, directory)
    return caught.value.problems


def session(**fields: str) -> str:
    """One [[session]] table; values are TOML source."""
    body = {"name": '"web"', "command": '"serve"', **fields}
    return "[[session]]\n" + "".join(f"{key} = {value}\n" for key, value in body.items())


# --- durations -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (5, 5.0),
        (0.25, 0.25),
        (0, 0.0),
        ("500ms", 0.5),
        ("5s", 5.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1m30s", 90.0),
        ("1.5s", 1.5),
        (" 5 s", 5.0),
        ("1h 30m", 5400.0),
        ("5", 5.0),
    ],
)
def test_durations_are_accepted_in_every_documented_form(value: object, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value", ["fast", "", "5x", "5S", "30s1m", "1m1m", "-5s", "1e3", None, [5], True, False]
)
def test_malformed_durations_are_rejected_naming_the_accepted_forms(value: object) -> None:
    with pytest.raises(ValueError, match=r"expected a duration such as 500ms, 5s, 2m"):
        parse_duration(value)


@pytest.mark.parametrize("value", [-1, -0.5, float("nan"), float("inf")])
def test_negative_or_infinite_numbers_are_not_durations(value: float) -> None:
    with pytest.raises(ValueError, match="non-negative, finite number of seconds"):
        parse_duration(value)


@given(st.integers(0, 99), st.integers(0, 59), st.integers(0, 59), st.integers(0, 999))
def test_compound_durations_add_up(h: int, m: int, s: int, ms: int) -> None:
    text = f"{h}h{m}m{s}s{ms}ms"
    assert parse_duration(text) == pytest.approx(h * 3600 + m * 60 + s + ms / 1000)


# --- valid decks -----------------------------------------------------------------------


def test_a_minimal_deck_gets_pool_defaults_and_is_named_after_its_file() -> None:
    spec = deck(ONE_SESSION)
    assert spec.name == "deck"
    assert spec.path == Path("/decks/deck.toml")
    assert spec.directory == Path("/decks")
    assert spec.pool == PoolSpec()
    assert (spec.pool.size, spec.pool.warm, spec.pool.acquire_timeout) == (4, 2, 30.0)
    only = spec.sessions[0]
    assert (only.terminal, only.timeout, only.stop_signal, only.stop_grace) == (
        "pooled",
        None,
        signal.SIGTERM,
        5.0,
    )


def test_duration_fields_accept_numbers_and_strings() -> None:
    spec = deck(
        '[pool]\nacquire_timeout = 2\nidle_timeout = "1m30s"\n' + session(timeout='"500ms"')
    )
    assert (spec.pool.acquire_timeout, spec.pool.idle_timeout) == (2.0, 90.0)
    assert spec.sessions[0].timeout == 0.5


def test_a_string_command_runs_through_the_shell() -> None:
    only = deck(session(command='"make -j4 && ./test"')).sessions[0]
    assert only.argv("/bin/sh") == ["/bin/sh", "-c", "make -j4 && ./test"]


def test_a_list_command_runs_as_is() -> None:
    only = deck(session(command='["python3", "-m", "http.server"]')).sessions[0]
    assert only.argv("/bin/sh") == ["python3", "-m", "http.server"]


def test_relative_cwd_is_resolved_against_the_deck_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "app").mkdir()
    monkeypatch.chdir("/")
    only = deck(session(cwd='"app"'), tmp_path).sessions[0]
    assert only.cwd == (tmp_path / "app").resolve()


@pytest.mark.parametrize("value", ['"TERM"', '"SIGTERM"', '"term"', " 15"])
def test_stop_signal_is_stored_as_a_number(value: str) -> None:
    assert deck(session(stop_signal=value)).sessions[0].stop_signal == 15


def test_shell_given_by_name_is_resolved_to_an_absolute_path() -> None:
    shell = deck('[pool]\nshell = "sh"\n' + ONE_SESSION).pool.shell
    assert Path(shell).is_absolute()
    assert os.access(shell, os.X_OK)


def test_session_size_overrides_and_env_are_kept() -> None:
    only = deck(session(cols="80", rows="24", env='{ PORT = "8080" }')).sessions[0]
    assert (only.cols, only.rows, only.env) == (80, 24, {"PORT": "8080"})


def test_models_are_frozen() -> None:
    only = deck(ONE_SESSION).sessions[0]
    with pytest.raises(ValueError, match="frozen"):
        only.name = "other"  # type: ignore[misc]
    assert isinstance(only, SessionSpec)


def test_the_demo_deck_loads_with_every_kind_of_session_a_newcomer_should_see() -> None:
    spec = load_deck(REPO / "examples" / "demo.toml")
    names = {s.name for s in spec.sessions}
    full_screen, failing, interactive = {"top"}, {"flaky-deploy"}, {"shell"}
    bus = {"producer", "worker-1", "coordinator", "auditor"}
    service = {"api", "smoke"}
    assert full_screen | failing | interactive | bus | service | {"build", "long-job"} <= names
    assert all(s.cwd is None or s.cwd.is_dir() for s in spec.sessions)


# --- one test per kind of mistake ------------------------------------------------------


def test_unknown_key_suggests_the_closest_allowed_one() -> None:
    text = '[[session]]\nname = "web"\ncommand = "x"\ncomand = "x"\n'
    [problem] = problems(text)
    assert problem.startswith("session[1] (web).comand: unknown key; did you mean 'command'?")
    assert "(allowed: name, command, cwd, env, terminal, timeout," in problem


def test_unknown_top_level_key_is_reported_with_a_suggestion() -> None:
    assert problems("sessions = 1\n" + ONE_SESSION) == [
        "sessions: unknown key; did you mean 'session'? (allowed: name, pool, max_parallel, "
        "memory_budget, max_failure_rate, failure_window, min_success, exit_when, alerts, "
        "record, bus, host, session)"
    ]


def test_the_deck_path_cannot_be_set_from_the_file() -> None:
    [problem] = problems('path = "/etc"\n' + ONE_SESSION)
    assert problem.startswith("path: unknown key")


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("size = '4'", "pool.size: expected an integer, got '4'"),
        ("size = true", "pool.size: expected an integer, got True"),
        ("size = 4.0", "pool.size: expected an integer, got 4.0"),
        ("size = 0", "pool.size: expected at least 1, got 0"),
        ("cols = 1001", "pool.cols: expected at most 1000, got 1001"),
        ("init = 3", "pool.init: expected a string, got 3"),
    ],
)
def test_wrong_types_and_ranges_name_the_expectation(toml: str, expected: str) -> None:
    assert problems(f"[pool]\n{toml}\n{ONE_SESSION}") == [expected]


def test_a_wrong_terminal_kind_lists_the_choices() -> None:
    assert problems(session(terminal='"tmux"')) == [
        "session[1] (web).terminal: expected 'pooled' or 'fresh', got 'tmux'"
    ]


def test_duplicate_names_are_reported_with_both_positions() -> None:
    text = session() + session(name='"db"') + session()
    assert problems(text) == ["session: duplicate name 'web' (session[1] and session[3])"]


def test_a_bad_duration_names_the_session_and_the_accepted_forms() -> None:
    text = session() + session(name='"build"', timeout='"fast"')
    assert problems(text) == [
        "session[2] (build).timeout: expected a duration such as 500ms, 5s, 2m or a number "
        "of seconds, got 'fast'"
    ]


def test_warm_terminals_cannot_exceed_the_pool_size() -> None:
    assert problems("[pool]\nwarm = 9\n" + ONE_SESSION) == [
        "pool.warm: must not exceed pool.size (4), got 9"
    ]


def test_a_missing_file_is_one_problem(tmp_path: Path) -> None:
    with pytest.raises(DeckError) as caught:
        load_deck(tmp_path / "nope.toml")
    assert caught.value.problems == ["file not found"]
    assert caught.value.path == str(tmp_path / "nope.toml")


def test_a_directory_is_not_a_deck(tmp_path: Path) -> None:
    with pytest.raises(DeckError) as caught:
        load_deck(tmp_path)
    assert caught.value.problems == ["is a directory, expected a deck file (.toml)"]


def test_a_file_that_is_not_utf8_is_reported(tmp_path: Path) -> None:
    (tmp_path / "deck.toml").write_bytes(b"name = '\xff'\n")
    with pytest.raises(DeckError) as caught:
        load_deck(tmp_path / "deck.toml")
    [problem] = caught.value.problems
    assert problem.startswith("not UTF-8 text")


def test_a_toml_syntax_error_gives_line_and_column() -> None:
    [problem] = problems("[pool\nsize = 4\n")
    assert problem.startswith("invalid TOML: ")
    assert "line 1, column 6" in problem


@pytest.mark.parametrize("cwd", ['"missing"', '"deck.toml"'])
def test_cwd_must_be_an_existing_directory(tmp_path: Path, cwd: str) -> None:
    (tmp_path / "deck.toml").write_text("")
    [problem] = problems(session(cwd=cwd), tmp_path)
    assert problem.startswith("session[1] (web).cwd: expected an existing directory (")
    assert problem.endswith(f"got {cwd.strip(chr(34))!r}")


def test_an_unknown_signal_lists_the_common_ones() -> None:
    assert problems(session(stop_signal='"TREM"')) == [
        "session[1] (web).stop_signal: expected a signal name (TERM, INT, HUP, QUIT, KILL, "
        "USR1, USR2, ...) or number, got 'TREM'"
    ]


@pytest.mark.parametrize("command", ['""', '"   "', "[]", '[""]', '["ls", 3]', "5"])
def test_an_empty_or_malformed_command_is_rejected(command: str) -> None:
    [problem] = problems(session(command=command))
    assert problem.startswith(
        "session[1] (web).command: expected a non-empty command string or list of strings, got "
    )


@pytest.mark.parametrize("name", ['""', '"-web"', '"a b"', '"web#1"', f'"{"x" * 65}"'])
def test_session_names_are_short_and_plain(name: str) -> None:
    [problem] = problems(session(name=name))
    assert "expected 1-64 letters, digits, '.', '_' or '-' starting with a letter" in problem


def test_hash_in_a_session_name_is_reserved_for_replicas() -> None:
    [problem] = problems(session(name='"web#1"'))
    assert problem.startswith("session[1] (web#1).name: '#' is reserved for replicas;")


def test_env_names_must_be_valid_variable_names() -> None:
    assert problems(session(env='{ "MY-VAR" = "1" }')) == [
        "session[1] (web).env: expected variable names of letters, digits and '_' not "
        "starting with a digit, got 'MY-VAR'"
    ]


def test_a_shell_that_does_not_exist_is_rejected() -> None:
    assert problems('[pool]\nshell = "no-such-shell-here"\n' + ONE_SESSION) == [
        "pool.shell: expected a program found on PATH, got 'no-such-shell-here'"
    ]


def test_a_deck_needs_at_least_one_session() -> None:
    assert problems('name = "empty"\n') == ["session: required key is missing"]
    assert problems("session = []\n") == ["session: at least one [[session]] table is required"]


def test_every_problem_is_reported_at_once() -> None:
    text = """\
        [pool]
        warm = 9
        [[session]]
        name = "web"
        comand = "serve"
        [[session]]
        name = "build"
        command = "make"
        timeout = "fast"
        [[session]]
        name = "web"
        command = []
        """
    found = problems(text)
    assert [line.split(":")[0] for line in found] == [
        "pool.warm",
        "session[1] (web).command",
        "session[1] (web).comand",
        "session[2] (build).timeout",
        "session[3] (web).command",
        "session",
    ]
    assert not any("Input should" in line or "pydantic" in line for line in found)


# --- scheduling fields -----------------------------------------------------------------


def test_scheduling_fields_have_safe_defaults() -> None:
    spec = deck(ONE_SESSION)
    only = spec.sessions[0]
    assert (only.priority, only.depends_on, only.retries, only.critical) == ("normal", [], 0, False)
    assert (only.replicas, only.workspace.isolated, only.memory) == (1, False, None)
    assert (spec.max_parallel, spec.parallel_limit, spec.min_success) == (None, 4, None)


def test_dependencies_accept_a_name_or_a_table_with_a_condition() -> None:
    text = session(name='"db"') + session(
        name='"app"', depends_on='["db", { name = "db", condition = "started" }]'
    )
    deps = deck(text).sessions[1].depends_on
    assert [(d.name, d.condition) for d in deps] == [("db", "succeeded"), ("db", "started")]


def test_an_unknown_dependency_is_named_with_the_known_sessions() -> None:
    assert problems(session(depends_on='["dbb"]')) == [
        "session[1] (web).depends_on: unknown session 'dbb' (known: web)"
    ]


def test_a_dependency_cycle_is_reported_as_a_path() -> None:
    text = (
        session(name='"a"', depends_on='["b"]')
        + session(name='"b"', depends_on='["c"]')
        + session(name='"c"', depends_on='["a"]')
    )
    assert problems(text) == ["session: dependency cycle a → b → c → a"]


def test_a_session_may_not_need_more_memory_than_the_budget() -> None:
    text = 'memory_budget = "1GiB"\n' + session(memory='"1.5GiB"')
    assert problems(text) == ["session[1] (web).memory: 1.5 GiB exceeds memory_budget (1 GiB)"]


def test_max_parallel_is_auto_or_at_most_the_pool_size() -> None:
    assert deck('max_parallel = "auto"\n' + ONE_SESSION).max_parallel == "auto"
    assert problems("max_parallel = 5\n" + ONE_SESSION) == [
        "max_parallel: must not exceed pool.size (4), got 5 (it bounds the sessions on this "
        "machine; a [[host]]'s own pool.size bounds the sessions there)"
    ]


def test_min_success_must_be_reachable_by_non_critical_sessions() -> None:
    text = "min_success = 3\n" + session(replicas="2") + session(name='"c"', critical="true")
    assert problems(text) == ["session: min_success (3) exceeds the 2 non-critical session(s)"]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"priority": '"urgent"'}, "expected 'critical', 'high', 'normal' or 'low'"),
        ({"retries": "-1"}, "expected at least 0"),
        ({"workspace": '"private"'}, "expected 'shared', 'isolated' or a table"),
        ({"replicas": "0"}, "expected at least 1"),
        ({"backoff": "{ factor = 0.5 }"}, "expected at least 1"),
    ],
)
def test_bad_scheduling_fields_name_the_expectation(fields: dict[str, str], expected: str) -> None:
    [problem] = problems(session(**fields))
    assert expected in problem


def test_an_unknown_key_with_a_hyphen_is_named_as_written() -> None:
    text = '[pool]\nmy-key = 1\n[[session]]\nname = "a"\ncommand = "x"\nready = { lo-g = "x" }\n'
    assert problems(text) == [
        "pool.my-key: unknown key (allowed: size, warm, recycle_after, acquire_timeout, "
        "idle_timeout, shell, init, cols, rows, scrollback)",
        "session[1] (a).ready.lo-g: unknown key; did you mean 'log'? (allowed: log, port, timeout)",
    ]


def test_a_union_field_is_one_line_without_pydantic_tags() -> None:
    [problem] = problems('max_parallel = 0\n[[session]]\nname = "a"\ncommand = "x"\n')
    assert problem == "max_parallel: expected at least 1 or 'auto', got 0"


def test_a_workspace_is_a_word_or_a_table_with_a_plain_base_ref() -> None:
    table = deck(session(workspace='{ isolated = true, base = "release/1.2" }')).sessions[0]
    assert (table.workspace.isolated, table.workspace.base) == (True, "release/1.2")
    short = deck(session(workspace='"isolated"')).sessions[0]
    assert (short.workspace.isolated, short.workspace.base) == (True, "HEAD")
    assert problems(session(workspace='"private"')) == [
        "session[1] (web).workspace: expected 'shared', 'isolated' or a table, got 'private'"
    ]
    assert problems(session(workspace='{ base = "--orphan" }')) == [
        "session[1] (web).workspace.base: expected a git ref (branch, tag or commit) such as "
        "'main', got '--orphan'"
    ]
