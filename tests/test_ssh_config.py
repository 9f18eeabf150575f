"""authorized_keys roles, `--ssh` options, the host key and the child's environment."""

from __future__ import annotations

import stat
from typing import TYPE_CHECKING

import asyncssh
import pytest

from tui.ssh.authorized_keys import AuthorizedKeysError, find_key, load_authorized_keys
from tui.ssh.session import Launch
from tui.ssh.ssh_config import (
    SSHConfigError,
    load_or_create_host_key,
    parse_duration,
    parse_listen,
)

if TYPE_CHECKING:
    from pathlib import Path


def _public(comment: str) -> tuple[asyncssh.SSHKey, str]:
    key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
    return key, key.export_public_key().decode().strip()


def test_a_key_without_options_is_a_viewer_and_role_operator_is_read_from_its_line(
    tmp_path: Path,
) -> None:
    (_, alice_line), (bob, bob_line) = _public("alice@laptop"), _public("bob")
    path = tmp_path / "authorized_keys"
    path.write_text(f'# team\n\nrole="operator" {alice_line}\n{bob_line}\n')
    keys = load_authorized_keys(path)
    assert [(k.role, k.comment) for k in keys] == [("operator", "alice@laptop"), ("viewer", "bob")]
    found = find_key(keys, bob.convert_to_public())
    assert found is not None
    assert found.fingerprint == bob.get_fingerprint()
    assert find_key(keys, _public("stranger")[0]) is None


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ('command="/bin/sh"', "unknown option 'command'"),
        ('role="operator",no-pty', "unknown option 'no-pty'"),
        ('role="admin"', "role must be"),
        ("role=operator", "write role="),
    ],
)
def test_unknown_options_and_bad_roles_are_refused_with_the_line_number(
    tmp_path: Path, options: str, problem: str
) -> None:
    path = tmp_path / "authorized_keys"
    path.write_text(f"{_public('ok')[1]}\n{options} {_public('x')[1]}\n")
    with pytest.raises(AuthorizedKeysError, match=f":2: .*{problem}"):
        load_authorized_keys(path)


def test_a_line_that_is_not_a_public_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "authorized_keys"
    path.write_text("ssh-ed25519 not-base64 me\n")
    with pytest.raises(AuthorizedKeysError, match=":1: not a public key"):
        load_authorized_keys(path)


def test_the_host_key_is_generated_once_private_and_then_reused(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "swarmdeck" / "ssh_host_ed25519_key"
    first = load_or_create_host_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create_host_key(path).get_fingerprint() == first.get_fingerprint()
    assert first.get_algorithm() == "ssh-ed25519"


def test_listening_defaults_to_loopback_unless_a_host_is_given() -> None:
    assert parse_listen("2222") == ("127.0.0.1", 2222)
    assert parse_listen(":2222") == ("127.0.0.1", 2222)
    assert parse_listen("0.0.0.0:22") == ("0.0.0.0", 22)
    assert parse_listen("[::1]:2200") == ("::1", 2200)
    with pytest.raises(SSHConfigError):
        parse_listen("host:ssh")


def test_idle_timeouts_read_seconds_minutes_and_hours() -> None:
    assert [parse_duration(t) for t in ("90", "90s", "30m", "2h")] == [90, 90, 1800, 7200]
    with pytest.raises(SSHConfigError):
        parse_duration("soon")


@pytest.mark.parametrize(
    ("term", "colours"), [("xterm-256color", "256"), ("xterm-direct", "truecolor"), ("", "256")]
)
def test_the_child_gets_the_clients_term_a_server_chosen_colour_depth_and_no_size_hints(
    monkeypatch: pytest.MonkeyPatch, term: str, colours: str
) -> None:
    for name, value in {"COLUMNS": "80", "LINES": "24", "COLORTERM": "truecolor",
                        "SWARMDECK_ROLE": "operator"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    launch = Launch("/run/x.sock", "viewer", 1.0, 60.0, lambda *a, **k: None, set())
    env = launch.env(term)
    assert "COLUMNS" not in env
    assert "LINES" not in env
    assert env["TERM"] == (term or "xterm-256color")
    assert env["TEXTUAL_COLOR_SYSTEM"] == colours
    assert env.get("COLORTERM") == ("truecolor" if colours == "truecolor" else None)
    assert env["SWARMDECK_ROLE"] == "viewer"
    assert launch.argv()[-4:] == ["attach", "/run/x.sock", "--role", "viewer"]
