"""The deck's [[host]] tables and a session's `host`: what is accepted, what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.deck.spec import parse_deck
from tests.test_spec import problems

SESSION_ON = '[[session]]\nname = "train"\ncommand = "run"\nhost = {hosts}\n'


def test_a_host_and_a_session_on_it_are_read_with_their_defaults() -> None:
    text = '[[host]]\nname = "gpu1"\nssh = "ana@gpu1.lan:2222"\n' + SESSION_ON.format(
        hosts='"gpu1"'
    )
    deck = parse_deck(text, Path("/decks/d.toml"))
    [host] = deck.hosts
    assert (host.ssh.user, host.ssh.host, host.ssh.port) == ("ana", "gpu1.lan", 2222)
    assert (host.pool.size, host.pool.warm, host.max_channels) == (4, 2, 10)
    assert host.known_hosts == Path("~/.ssh/known_hosts").expanduser()
    assert deck.sessions[0].hosts == ("gpu1",)
    assert deck.host_named("gpu1") is host


def test_an_address_without_user_or_port_means_the_engines_user_on_port_22() -> None:
    deck = parse_deck('[[host]]\nname = "h"\nssh = "[::1]"\n' + SESSION_ON.format(hosts='"h"'),
                      Path("/decks/d.toml"))  # fmt: skip
    assert (deck.hosts[0].ssh.user, deck.hosts[0].ssh.host, deck.hosts[0].ssh.port) == (
        None, "::1", 22)  # fmt: skip


@pytest.mark.parametrize(
    ("hosts", "session_host", "expected"),
    [
        ('ssh = "a@@b"', '"h"', "host[1] (h).ssh: expected an SSH address like 'user@host:22', "
         "got 'a@@b'"),
        ('ssh = "a@b:0"', '"h"', "host[1] (h).ssh: expected a port from 1 to 65535 in the SSH "
         "address, got 'a@b:0'"),
        ('ssh = "b"', '"gpu9"', "session[1] (train).host: unknown host 'gpu9' (known: h; add a "
         "[[host]] table)"),
        ('ssh = "b"', '["h", "h"]', "session[1] (train).host: expected each host once, got 'h' "
         "twice"),
        ('ssh = "b"\nidentity = "/no/such/key"', '"h"', "host[1] (h).identity: expected an "
         "existing private key file (/no/such/key), got '/no/such/key'"),
        ('ssh = "b"\npool = { size = 5 }', '"h"', "host[1] (h): pool.size (5) needs 2 x 5 + 1 = "
         "11 channels (a PTY and a control stream per terminal, 1 for signals and probes), "
         "more than max_channels (10): make pool.size at most 4 or max_channels at least 11 "
         "(and the host's sshd MaxSessions with it)"),
        ('ssh = "b"\npool = { size = 4 }\nmax_channels = 8', '"h"', "host[1] (h): pool.size (4) "
         "needs 2 x 4 + 1 = 9 channels (a PTY and a control stream per terminal, 1 for "
         "signals and probes), more than max_channels (8): make pool.size at most 3 or "
         "max_channels at least 9 (and the host's sshd MaxSessions with it)"),
        ('ssh = "b"\npool = { size = 2, warm = 3 }', '"h"', "host[1] (h).pool.warm: must not "
         "exceed the host's pool.size (2), got 3"),
    ],
)  # fmt: skip
def test_a_bad_host_or_host_reference_is_reported_by_field(
    hosts: str, session_host: str, expected: str
) -> None:
    text = f'[[host]]\nname = "h"\n{hosts}\n' + SESSION_ON.format(hosts=session_host)
    assert expected in problems(text)


def test_a_session_on_an_undeclared_host_says_none_are_declared() -> None:
    assert problems(SESSION_ON.format(hosts='"gpu1"')) == [
        "session[1] (train).host: unknown host 'gpu1' (known: none declared; add a [[host]] table)"
    ]
