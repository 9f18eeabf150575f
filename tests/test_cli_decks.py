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


def test_a_named_session_starts_even_with_autostart_false(tmp_path: Path) -> None:
    deck = tmp_path / "ci.toml"
    deck.write_text(THREE.replace('name = "build"\n', 'name = "build"\nautostart = false\n'))
    out = _cli(tmp_path, "run", "--headless", str(deck), "test", "--run-dir", "run")
    assert out.returncode == 0, out.stderr  # test needs build: naming test starts both
    assert _states(tmp_path / "run") == {"build": "completed", "test": "completed"}


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


def test_on_failure_restarts_a_service_until_it_succeeds_and_counts_no_failure(
    tmp_path: Path,
) -> None:
    deck = tmp_path / "svc.toml"
    deck.write_text(  # fails twice, then succeeds; a failure rate over 0 would halt the run
        "max_failure_rate = 0.0\nfailure_window = 1\n\n"
        '[[session]]\nname = "flaky"\nrestart = "on-failure"\n'
        'backoff = { initial = "10ms", max = "50ms" }\n'
        "command = 'echo x >> tries; test $(wc -l < tries) -ge 3'\n"
        '[[session]]\nname = "after"\ncommand = "echo after"\ndepends_on = ["flaky"]\n'
    )
    out = _cli(tmp_path, "run", "--headless", str(deck), "--run-dir", "run")
    assert out.returncode == 0, out.stdout + out.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    flaky = next(s for s in summary["sessions"] if s["name"] == "flaky")
    assert (flaky["state"], flaky["restarts"], flaky["attempt_count"]) == ("completed", 2, 3)
    assert [a["state"] for a in flaky["attempts"]] == ["failed", "failed", "completed"]
    assert summary["ok"] is True
    assert _states(tmp_path / "run") == {"flaky": "completed", "after": "completed"}


def test_retries_and_a_restart_policy_are_refused_together(tmp_path: Path) -> None:
    deck = tmp_path / "svc.toml"
    deck.write_text(
        '[[session]]\nname = "web"\ncommand = "true"\nretries = 2\nrestart = "always"\n'
    )
    out = _cli(tmp_path, "validate", str(deck))
    assert out.returncode == 2
    assert (
        "session[1] (web).restart: restart = 'always' restarts it without limit: drop "
        "retries = 2 (retries are for jobs that should end)"
    ) in out.stderr, out.stderr


def test_always_restarts_a_served_service_each_time_it_ends_shown_as_its_count(
    tmp_path: Path,
) -> None:
    from tests.cli_support import served

    body = (
        '[[session]]\nname = "svc"\nrestart = "always"\ncommand = "echo up; sleep 0.1"\n'
        'backoff = { initial = "10ms", max = "100ms" }\n'
    )
    with served(body, tmp_path) as service:

        def restarted_twice() -> bool:
            listed = json.loads(service.cli("sessions", str(tmp_path / "run"), "--json").stdout)
            return bool(listed[0]["restarts"] >= 2)

        service.until(restarted_twice)
        service.cli("terminate", str(tmp_path / "run"), "svc")

        def stopped() -> bool:
            (info,) = json.loads(service.cli("sessions", str(tmp_path / "run"), "--json").stdout)
            return bool(info["state"] == "terminated")

        service.until(stopped)  # the operator's stop is final: no restart after it
        (info,) = json.loads(service.cli("sessions", str(tmp_path / "run"), "--json").stdout)
        assert info["state"] == "terminated"


MANUAL = (
    '[[session]]\nname = "job"\ncommand = "echo job"\n\n'
    '[[session]]\nname = "manual"\ncommand = "echo by hand"\nautostart = false\n'
)


def test_a_headless_run_ends_without_the_sessions_nobody_started(tmp_path: Path) -> None:
    deck = tmp_path / "deck.toml"
    deck.write_text(MANUAL)
    out = _cli(tmp_path, "run", "--headless", str(deck), "--run-dir", "run")
    assert out.returncode == 0, out.stdout + out.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    manual = next(s for s in summary["sessions"] if s["name"] == "manual")
    assert (manual["state"], manual["reason"]) == (
        "skipped",
        "autostart = false: no operator started it",
    )
    verdict = summary["verdict"]
    assert (verdict["outcome"], verdict["succeeded"], verdict["total"]) == ("succeeded", 1, 1)


def test_autostart_false_waits_for_swarmdeck_start(tmp_path: Path) -> None:
    from tests.cli_support import served

    run = str(tmp_path / "run")
    with served(MANUAL, tmp_path) as service:

        def info(name: str) -> dict[str, object]:
            listed = json.loads(service.cli("sessions", run, "--json").stdout)
            found: dict[str, object] = next(i for i in listed if i["name"] == name)
            return found

        service.until(lambda: info("job")["state"] == "completed")
        waiting = info("manual")
        assert (waiting["state"], waiting["waiting_for_start"]) == ("queued", True)
        assert waiting["reason"] == "autostart = false: waiting for an operator's start"
        refused = service.cli("start", run, "manual", "--viewer", check=False)
        assert refused.returncode == 1
        assert info("manual")["state"] == "queued"
        other = service.cli("start", run, "job", check=False)
        assert other.returncode == 1
        assert "not waiting for an operator's start (autostart = false)" in other.stderr
        service.cli("start", run, "manual")
        service.until(lambda: info("manual")["state"] == "completed")
        assert info("manual")["waiting_for_start"] is False


def _cast(path: Path) -> tuple[dict[str, object], list[list[object]]]:
    """A whole asciicast v2 file: its header and events (every line valid JSON)."""
    header, *events = (json.loads(line) for line in path.read_text().splitlines())
    return header, events


def test_recordings_past_max_size_rotate_into_files_that_each_play_alone(
    tmp_path: Path,
) -> None:
    deck = tmp_path / "deck.toml"
    deck.write_text(
        'record = { max_size = "64KiB", keep = 2 }\n\n'
        '[[session]]\nname = "chatty"\ncommand = "seq 1 60000"\n'
    )
    out = _cli(tmp_path, "run", "--headless", str(deck), "--run-dir", "run")
    assert out.returncode == 0, out.stderr
    sessions = tmp_path / "run" / "sessions"
    kept = [sessions / "chatty.2.cast", sessions / "chatty.1.cast", sessions / "chatty.cast"]
    assert all(path.exists() for path in kept)
    assert not (sessions / "chatty.3.cast").exists()  # keep = 2: older parts deleted
    text = ""
    for path in kept:
        header, events = _cast(path)
        assert (header["version"], header["width"], header["title"]) == (2, 120, "chatty")
        times = [float(str(event[0])) for event in events]
        assert times == sorted(times)
        assert times[0] < 5  # each part's times start from its own header
        if path.name != "chatty.cast":
            # a read burst (up to 256 KiB) is split at the cap: a file ends about there
            assert 64 * 1024 <= path.stat().st_size <= 65 * 1024
        text += "".join(str(event[2]) for event in events if event[1] == "o")
    numbers = [int(line) for line in text.split("\r\n")[1:] if line.strip()]
    assert numbers[-1] == 60000  # the kept parts are one contiguous tail of the output
    assert numbers == list(range(numbers[0], 60001))
    assert len(numbers) > 2 * 64 * 1024 // 12  # two whole files: ~10 bytes per number


def test_logs_reads_a_rotated_recording_from_its_oldest_part_kept(tmp_path: Path) -> None:
    from tests.cli_support import served

    body = (
        'record = { max_size = "16KiB", keep = 3 }\n\n'
        '[[session]]\nname = "chatty"\ncommand = "seq 1 20000"\n'
    )
    run = str(tmp_path / "run")
    with served(body, tmp_path) as service:

        def done() -> bool:
            (info,) = json.loads(service.cli("sessions", run, "--json").stdout)
            return bool(info["state"] == "completed")

        service.until(done)
        logs = service.cli("logs", run, "chatty").stdout
    assert (tmp_path / "run" / "sessions" / "chatty.3.cast").exists()
    numbers = [int(line) for line in logs.splitlines()[1:] if line.strip()]  # text mode: \n
    assert numbers == list(range(numbers[0], 20001))
    assert numbers[0] > 1  # older parts were deleted; what is kept is one contiguous tail
    assert len(numbers) > 3 * 16 * 1024 // 12  # the three old parts kept, then the current


def _age(path: Path, days: float) -> None:
    """Make a run directory look `days` old (its top level, as clean reads it)."""
    import os
    import time

    then = time.time() - days * 86400
    for entry in [*path.iterdir(), path]:
        os.utime(entry, (then, then), follow_symlinks=False)


def test_clean_removes_old_runs_and_their_worktrees_never_a_live_one(tmp_path: Path) -> None:

    from tests.cli_support import served
    from tests.test_scheduler_workspaces import git

    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "a.txt").write_text("a\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    runs = tmp_path / "runs"
    old, recent = runs / "deck-old", runs / "deck-recent"
    (old / "workspaces").mkdir(parents=True)
    git(repo, "worktree", "add", "-q", "-b", "swarmdeck/deck-old/agent",
        str(old / "workspaces" / "agent"))  # fmt: skip
    (old / "summary.json").write_text("{}")
    (recent / "sessions").mkdir(parents=True)
    body = '[[session]]\nname = "long"\ncommand = "sleep 60"\n'
    with served(body, runs) as service:  # its run directory is runs/run, held by the engine
        live = runs / "run"
        _age(old, 10)
        env = {**service.env, "XDG_CONFIG_HOME": str(tmp_path / "no-config")}
        command = [*SWARMDECK, "clean", "--runs", str(runs), "--older-than", "7d"]

        def clean(*extra: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*command, *extra], capture_output=True, text=True, env=env, timeout=50
            )

        dry = clean("--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert f"would remove {old} and 1 worktree(s)" in dry.stdout
        assert old.exists()
        out = clean()
        assert out.returncode == 0, out.stderr
        assert f"removed {old} and 1 worktree(s)" in out.stdout
        assert "removed 1 run directory older than 7d" in out.stdout
        assert recent.is_dir()
        every = clean("--older-than", "0")  # every directory is old enough now: the lock
        assert f"kept {live}: a live engine holds it" in every.stdout  # alone keeps it
        assert f"removed {recent}\n" in every.stdout
        assert live.is_dir()
        assert service.process.poll() is None  # the live run goes on
        (info,) = json.loads(service.cli("sessions", str(live), "--json").stdout)
        assert info["state"] == "active"
    assert not old.exists()
    assert "deck-old" not in git(repo, "worktree", "list")
    assert "swarmdeck/deck-old/agent" in git(repo, "branch", "--list")  # its work is kept


def test_clean_refuses_an_age_it_cannot_read(tmp_path: Path) -> None:
    out = _cli(tmp_path, "clean", "--older-than", "a week")
    assert out.returncode == 2
    assert "swarmdeck clean: --older-than: expected a duration" in out.stderr


def _imported(tmp_path: Path, name: str, text: str) -> tuple[dict[str, object], str]:
    """`swarmdeck import` of `text` saved as `name`: the deck it printed (which `swarmdeck
    validate` must accept, saved beside the file) and what it said on stderr."""
    import tomllib

    (tmp_path / name).write_text(text)
    out = _cli(tmp_path, "import", name)
    assert out.returncode == 0, out.stderr
    (tmp_path / "deck.toml").write_text(out.stdout)
    valid = _cli(tmp_path, "validate", "deck.toml")
    assert valid.returncode == 0, valid.stderr + out.stdout
    return tomllib.loads(out.stdout), out.stderr


def test_import_a_procfile(tmp_path: Path) -> None:
    deck, _ = _imported(
        tmp_path, "Procfile", "# services\nweb: python3 -m http.server $PORT\nworker_2: sleep 9\n"
    )
    assert deck["session"] == [
        {"name": "web", "command": "python3 -m http.server $PORT"},
        {"name": "worker_2", "command": "sleep 9"},
    ]
    assert deck["pool"] == {"size": 2, "warm": 2}  # every process at once, as foreman does


def test_import_process_compose_with_dependencies_restarts_and_what_is_left_out(
    tmp_path: Path,
) -> None:
    (tmp_path / "api").mkdir()
    deck, notes = _imported(
        tmp_path,
        "process-compose.yaml",
        """version: "0.5"
environment: ["SHARED=1"]
log_location: /tmp/pc.log
processes:
  db:
    command: "postgres -D data"
    availability: {restart: always, backoff_seconds: 2}
    readiness_probe: {exec: {command: "pg_isready"}}
  migrate:
    command: ./migrate.sh
    depends_on: {db: {condition: process_healthy}}
    availability: {restart: on_failure, max_restarts: 3}
  api:
    command: "uvicorn app:main"
    working_dir: api
    environment: ["PORT=8080", "MODE=dev"]
    depends_on: {migrate: {condition: process_completed_successfully}}
    shutdown: {signal: 2, timeout_seconds: 10}
  docs:
    command: mkdocs serve
    disabled: true
""",
    )
    sessions = {s["name"]: s for s in deck["session"]}  # type: ignore[attr-defined]
    assert sessions["db"] == {
        "name": "db", "command": "postgres -D data", "restart": "always",
        "backoff": {"initial": 2}, "env": {"SHARED": "1"},
    }  # fmt: skip
    assert sessions["migrate"]["retries"] == 3
    assert sessions["migrate"]["depends_on"] == [{"name": "db", "condition": "started"}]
    assert sessions["api"]["cwd"] == "api"
    assert sessions["api"]["env"] == {"SHARED": "1", "PORT": "8080", "MODE": "dev"}
    assert sessions["api"]["depends_on"] == [{"name": "migrate", "condition": "succeeded"}]
    assert (sessions["api"]["stop_signal"], sessions["api"]["stop_grace"]) == (2, 10)
    assert sessions["docs"]["autostart"] is False
    assert "process-compose.yaml: log_location: not imported (no deck equivalent)" in notes
    assert "processes.db.readiness_probe: not imported (no deck equivalent)" in notes


def test_import_mprocs(tmp_path: Path) -> None:
    deck, notes = _imported(
        tmp_path,
        "mprocs.yaml",
        """procs:
  server:
    shell: "npm run dev"
    cwd: "<CONFIG_DIR>"
    env: {NODE_ENV: development, DEBUG: null}
    autorestart: true
    stop: SIGINT
  tests:
    cmd: ["pytest", "-x"]
    autostart: false
  logs: "tail -f /var/log/syslog"
""",
    )
    assert deck["session"] == [
        {"name": "server", "command": "npm run dev", "cwd": ".", "restart": "always",
         "stop_signal": "SIGINT", "env": {"NODE_ENV": "development"}},
        {"name": "tests", "command": ["pytest", "-x"], "autostart": False},
        {"name": "logs", "command": "tail -f /var/log/syslog"},
    ]  # fmt: skip
    assert "procs.server.env: unsetting DEBUG not imported" in notes


def test_import_refuses_what_it_cannot_read_naming_the_place(tmp_path: Path) -> None:
    (tmp_path / "Procfile").write_text("web: run\nthis is not a process line\n")
    out = _cli(tmp_path, "import", "Procfile")
    assert out.returncode == 2
    assert "Procfile: line 2: expected `name: command`, got 'this is not a process line'" in (
        out.stderr
    )
    (tmp_path / "pc.yaml").write_text("processes:\n  a: {command: x\n")
    out = _cli(tmp_path, "import", "pc.yaml")
    assert out.returncode == 2
    assert "pc.yaml: line 3: invalid YAML" in out.stderr, out.stderr
    (tmp_path / "other.yaml").write_text("services: {}\n")
    out = _cli(tmp_path, "import", "other.yaml")
    assert "cannot tell its format" in out.stderr
    (tmp_path / "dep.yaml").write_text("processes:\n  a: {command: x, depends_on: {b: {}}}\n")
    out = _cli(tmp_path, "import", "dep.yaml")
    assert "dep.yaml: processes.a.depends_on.b: no process named 'b'" in out.stderr


def test_serve_takes_the_same_subset(tmp_path: Path) -> None:
    """`swarmdeck run DECK SESSION…` starts `serve DECK SESSION…` in the background."""
    import os
    import signal

    from tests.remote_support import ROOT, short_dir

    deck = tmp_path / "ci.toml"
    deck.write_text(THREE)
    with short_dir() as runtime:
        env = {**os.environ, "SWARMDECK_RUNTIME_DIR": str(runtime)}
        args = ["serve", str(deck), "test", "--run-dir", str(tmp_path / "run")]
        server = subprocess.Popen(
            [*SWARMDECK, *args], cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE
        )
        try:
            assert server.stdout is not None
            assert "serving ci on" in server.stdout.readline()
            listed = subprocess.run(
                [*SWARMDECK, "sessions", str(tmp_path / "run"), "--json"],
                env=env, capture_output=True, text=True, timeout=50,
            )  # fmt: skip
            assert [info["name"] for info in json.loads(listed.stdout)] == ["build", "test"]
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
            assert server.stdout is not None
            server.stdout.close()
