"""CLI and config conventions: the person's themes, logging options, the SSH host key in
the state directory (subprocess runs of the real command)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

SWARMDECK = [sys.executable, "-m", "tui.cli"]
DECK = '[[session]]\nname = "a"\ncommand = "echo fine"\n'


def _cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), **env}
    return subprocess.run(
        [*SWARMDECK, *args], cwd=tmp_path, env=environment, capture_output=True, text=True,
        timeout=50,
    )  # fmt: skip


def test_a_theme_of_ones_own_extends_a_built_in_one_and_is_offered(tmp_path: Path) -> None:
    themes = tmp_path / "data" / "swarmdeck" / "themes"
    themes.mkdir(parents=True)
    (themes / "mine.toml").write_text(
        'name = "mine"\nextends = "swarmdeck-light"\nprimary = "#ff00aa"\n'
        '[variables]\nstate-failed = "#ff0000"\n'
    )
    (tmp_path / "deck.toml").write_text(DECK)
    xdg = {"XDG_DATA_HOME": str(tmp_path / "data")}
    out = _cli(tmp_path, "run", "--headless", "--theme", "mine", "deck.toml", **xdg)
    assert out.returncode == 0, out.stderr
    unknown = _cli(tmp_path, "run", "--headless", "--theme", "nope", "deck.toml", **xdg)
    assert unknown.returncode == 2
    assert "swarmdeck-light, mine)" in unknown.stderr  # the person's theme is among the known


def test_the_room_registers_the_persons_theme(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    themes = tmp_path / "swarmdeck" / "themes"
    themes.mkdir(parents=True)
    (themes / "mine.toml").write_text('name = "mine"\nextends = "swarmdeck-dark"\n')
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    from themes import all_themes, load_themes

    built_in = {t.name: t for t in load_themes()}
    mine = next(t for t in all_themes() if t.name == "mine")
    assert mine.variables == built_in["swarmdeck-dark"].variables
    assert mine.primary == built_in["swarmdeck-dark"].primary


def test_a_bad_theme_of_ones_own_is_refused_naming_its_file(tmp_path: Path) -> None:
    themes = tmp_path / "data" / "swarmdeck" / "themes"
    themes.mkdir(parents=True)
    bad = themes / "half.toml"
    bad.write_text('name = "half"\ndark = true\nprimary = "#123456"\n')
    (tmp_path / "deck.toml").write_text(DECK)
    out = _cli(tmp_path, "run", "--headless", "deck.toml", XDG_DATA_HOME=str(tmp_path / "data"))
    assert out.returncode == 2
    assert f"swarmdeck run: {bad}: secondary: Field required" in out.stderr, out.stderr
    bad.write_text('name = "half"\nextends = "solarized"\n')
    out = _cli(tmp_path, "run", "--headless", "deck.toml", XDG_DATA_HOME=str(tmp_path / "data"))
    assert f"{bad}: extends: unknown theme 'solarized' (known: swarmdeck-dark," in out.stderr
    assert not (tmp_path / ".swarmdeck").exists()  # refused before anything started


def test_the_ssh_host_key_lives_in_the_state_dir_and_an_old_one_is_moved_there(
    tmp_path: Path,
) -> None:
    import signal
    import stat

    from tests.remote_support import ROOT, short_dir
    from tests.ssh_support import _keygen

    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    (keys / "authorized_keys").write_text(_keygen(keys, "operator") + "\n")
    old = tmp_path / "config" / "swarmdeck" / "ssh_host_ed25519_key"
    old.parent.mkdir(parents=True)
    _keygen(old.parent, "ssh_host_ed25519_key")  # what an older swarmdeck left there
    old_public = old.with_suffix(".pub").read_text().split()[1]
    (tmp_path / "svc.toml").write_text('[[session]]\nname = "a"\ncommand = "sleep 30"\n')
    state = tmp_path / "state"
    with short_dir() as runtime:
        env = {
            **os.environ,
            "SWARMDECK_RUNTIME_DIR": str(runtime),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "XDG_STATE_HOME": str(state),
        }
        command = [*SWARMDECK, "serve", str(tmp_path / "svc.toml"), "--run-dir",
                   str(tmp_path / "run"), "--ssh", "127.0.0.1:0",
                   "--authorized-keys", str(keys / "authorized_keys")]  # fmt: skip
        server = subprocess.Popen(
            command, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            assert server.stdout is not None
            server.stdout.readline()
            listening = server.stdout.readline()
            port = listening.split("127.0.0.1:", 1)[1].split()[0]
            scan = subprocess.run(
                ["ssh-keyscan", "-t", "ed25519", "-p", port, "127.0.0.1"],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
        finally:
            server.send_signal(signal.SIGTERM)
            _, errors = server.communicate(timeout=30)
    new = state / "swarmdeck" / "ssh_host_ed25519_key"
    assert f"moved the SSH host key from {old} to {new}" in errors
    assert new.is_file()
    assert not old.exists()
    assert stat.S_IMODE(new.stat().st_mode) == 0o600
    assert stat.S_IMODE(new.parent.stat().st_mode) == 0o700
    assert old_public in scan.stdout  # the same key: clients' known_hosts stay valid


def _refused_hello(socket_path: str) -> str:
    """A client speaking another protocol version: the engine logs it at info level."""
    import json
    import socket

    with socket.socket(socket.AF_UNIX) as client:
        client.settimeout(30)
        client.connect(socket_path)
        hello = {"op": "hello", "req": 0, "protocol": 999, "role": "viewer"}
        client.sendall(json.dumps(hello).encode() + b"\n")
        return client.recv(65536).decode()


def test_log_level_and_log_file_reach_the_engines_loggers(tmp_path: Path) -> None:
    import signal

    from tests.remote_support import ROOT, short_dir

    (tmp_path / "svc.toml").write_text('[[session]]\nname = "a"\ncommand = "sleep 30"\n')
    log = tmp_path / "swarmdeck.log"
    for options in (["--log-level", "info", "--log-file", str(log)], []):
        with short_dir() as runtime:
            env = {**os.environ, "SWARMDECK_RUNTIME_DIR": str(runtime)}
            command = [*SWARMDECK, *options, "serve", str(tmp_path / "svc.toml"),
                       "--run-dir", str(tmp_path / f"run{len(options)}")]  # fmt: skip
            server = subprocess.Popen(
                command, cwd=ROOT, env=env, text=True,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
            try:
                assert server.stdout is not None
                socket_path = server.stdout.readline().rsplit(" on ", 1)[1].strip()
                assert "ProtocolVersionError" in _refused_hello(socket_path)
            finally:
                server.send_signal(signal.SIGTERM)
                _, errors = server.communicate(timeout=30)
        if options:
            text = log.read_text()
            assert " INFO engine.remote.control_server: control client refused at hello" in text
            assert "refused at hello" not in errors
        else:
            assert "refused at hello" not in errors  # the default level is warning
    bad = _cli(tmp_path, "--log-file", str(tmp_path), "validate", "svc.toml")
    assert bad.returncode == 2
    assert f"swarmdeck: --log-file {tmp_path}: Is a directory" in bad.stderr
