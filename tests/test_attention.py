"""A session that waits for the operator is marked: idle at a prompt, a bell, a desktop
notification, a bus message; focusing or typing clears it; attached clients see it."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest

from engine.deck.spec import parse_deck
from engine.errors import DeckError
from engine.events import AttentionChanged
from engine.screen import Screen
from engine.states import SessionState as S
from engine.terminals.foreground import POLLS
from tests.remote_support import attached, eventually, serving
from tests.support import BUS_CLI, running, wait_state, wait_text

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectReceiveStream

    from engine.engine import Engine
    from engine.events import Event

pytestmark = pytest.mark.anyio

CLI = BUS_CLI
PROMPT = "bash-"  # the start of bash's default prompt
SHELL = """
[[session]]
name = "sh"
command = "exec bash --norc --noprofile -i"
attention = {{ {attention} }}
"""


def _drain(events: MemoryObjectReceiveStream[Event]) -> list[Event]:
    drained = []
    with contextlib.suppress(anyio.WouldBlock):
        while True:
            drained.append(events.receive_nowait())
    return drained


async def _marked(engine: Engine, name: str, reason: str, timeout: float = 20) -> None:
    with anyio.fail_after(timeout):
        while engine.session_info(name).attention != reason:
            await anyio.sleep(0.02)


@pytest.mark.parametrize("terminal", ["pooled", "fresh"])
async def test_a_shell_quiet_at_its_prompt_is_marked_idle_and_focusing_clears_it(
    tmp_path: Path, terminal: str
) -> None:
    deck = SHELL.format(attention='idle = "0.3s"') + f'terminal = "{terminal}"\n'
    async with running(tmp_path, deck) as engine:
        events = engine.subscribe()
        await wait_text(engine, "sh", PROMPT)
        await _marked(engine, "sh", "idle")
        info = engine.session_info("sh")
        assert info.attention_since is not None
        await engine.focus("sh")
        assert engine.session_info("sh").attention == ""
        with events:
            seen = [e.reason for e in _drain(events) if isinstance(e, AttentionChanged)]
        assert seen == ["idle", ""]


async def test_a_shell_running_a_command_does_not_wait_for_keys_and_at_its_prompt_does(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, SHELL.format(attention='idle = "off"')) as engine:
        await wait_text(engine, "sh", PROMPT)
        session = engine.sessions["sh"]
        term = session.terminal
        assert term is not None
        assert term.kind != "remote"
        await eventually(term.waits_for_keys)
        await engine.send_input("sh", b"sleep 30; echo woke\r")
        await eventually(lambda: os.tcgetpgrp(term.master) != session.pid)
        await eventually(lambda: not term.waits_for_keys())  # sleep's group holds the tty
        assert not term.waits_for_keys()
        assert engine.session_info("sh").attention == ""


RAW_POLL = "import select, tty; tty.setraw(0); print('raw'); select.select([0], [], [])"
SERVER = (
    "import select, socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen();"
    " print('serving'); select.select([s], [], [])"
)


@pytest.mark.skipif(not POLLS, reason="no syscall table for this machine")
@pytest.mark.parametrize(("program", "waits"), [(RAW_POLL, True), (SERVER, False)])
async def test_a_poll_waits_for_keys_only_with_the_terminal_in_non_canonical_mode(
    tmp_path: Path, program: str, waits: bool
) -> None:
    """An editor or an agent polls its raw terminal; a server polls its sockets and
    leaves the terminal cooked (and prints nothing either)."""
    body = f'[[session]]\nname = "p"\ncommand = ["{sys.executable}", "-c", "{program}"]\n'
    async with running(tmp_path, body + 'attention = { idle = "off" }\n') as engine:
        await wait_text(engine, "p", "raw" if waits else "serving")
        session = engine.sessions["p"]
        assert session.terminal is not None
        assert session.pid is not None
        pid = session.pid
        await eventually(lambda: _syscall_number(pid) in POLLS)
        assert session.terminal.waits_for_keys() is waits


def _syscall_number(pid: int) -> int | None:
    with open(f"/proc/{pid}/syscall", "rb") as f:
        first = f.read().split()[0]
    return int(first) if first.isdigit() else None


@pytest.mark.parametrize(
    ("typed", "reason", "text"),
    [
        (b"printf '\\a'\r", "bell", ""),
        (b"printf '\\033]9;build done\\033\\\\'\r", "notify", "build done"),
        (b"printf '\\033]777;notify;agent;needs you\\a'\r", "notify", "agent: needs you"),
    ],
)
async def test_a_bell_or_a_notification_marks_the_session_and_typing_clears_it(
    tmp_path: Path, typed: bytes, reason: str, text: str
) -> None:
    async with running(tmp_path, SHELL.format(attention='idle = "off"')) as engine:
        await wait_text(engine, "sh", PROMPT)
        await engine.send_input("sh", typed)
        await _marked(engine, "sh", reason)
        assert engine.session_info("sh").attention_text == text
        await engine.send_input("sh", b"\r")
        assert engine.session_info("sh").attention == ""


async def test_a_bell_is_ignored_when_the_deck_says_so(tmp_path: Path) -> None:
    deck = SHELL.format(attention='idle = "off", bell = false')
    async with running(tmp_path, deck) as engine:
        await wait_text(engine, "sh", PROMPT)
        await engine.send_input("sh", b"printf '\\a'; echo rang-$((6*7))\r")
        await wait_text(engine, "sh", "rang-42")
        assert engine.session_info("sh").attention == ""


async def test_publishing_on_the_attention_topic_marks_the_publishing_session(
    tmp_path: Path,
) -> None:
    body = f"""
[[session]]
name = "agent"
command = "{CLI} publish attention '\\"review please\\"' && echo sent && exec sleep 60"
attention = {{ idle = "off" }}

[[session]]
name = "other"
command = "exec sleep 60"
"""
    async with running(tmp_path, body) as engine:
        await wait_text(engine, "agent", "sent", timeout=30)
        await _marked(engine, "agent", "bus")
        assert engine.session_info("agent").attention_text == "review please"
        assert engine.session_info("other").attention == ""
        await engine.pause("agent")
        assert engine.session_info("agent").attention == ""  # paused: nobody is waited on
        await wait_state(engine, "agent", S.PAUSED)


async def test_an_attached_client_sees_the_mark_and_its_clearing(tmp_path: Path) -> None:
    async with (
        running(tmp_path, SHELL.format(attention='idle = "off"')) as engine,
        serving(engine) as server,
        attached(server) as client,
    ):
        await wait_text(engine, "sh", PROMPT)
        await client.send_input("sh", b"printf '\\a'\r")
        await eventually(lambda: client.session_info("sh").attention == "bell")
        await client.focus("sh")
        await eventually(lambda: client.session_info("sh").attention == "")


def test_the_screen_sees_a_notification_split_across_reads_once_whole() -> None:
    screen = Screen(40, 4)
    screen.feed(b"\x1b]9;done bu")
    assert screen.take_signals() == {}
    screen.feed(b"ild\x1b\\ok")
    assert screen.take_signals() == {"notify": "done build"}


def test_a_bel_ending_an_escape_string_rings_no_bell() -> None:
    """Shells set the title with OSC 0 ... BEL at every prompt; links, cwd reports and
    shell-integration marks end with BEL too, even split across reads; ConEmu's OSC 9;4
    is a progress report, not a notification."""
    screen = Screen(40, 4)
    screen.feed(b"\x1b]0;title\x07\x1b]8;;http://x\x07link\x1b]8;;\x07\x1b]7;file://h/")
    screen.feed(b"tmp\x07\x1b]133;A\x07\x1b]9;4;1;50\x07")
    assert screen.take_signals() == {}
    assert screen.title == "title"
    screen.feed(b"a\x07b")
    assert screen.take_signals() == {"bell": ""}
    assert screen.text()[0] == "linkab"


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ("idle = 0", 'attention.idle: expected a duration above 0 (or "off"), got 0'),
        ('idle = "soon"', "attention.idle: expected a duration such as 500ms"),
        ("bel = true", "attention.bel: unknown key; did you mean 'bell'?"),
        ('bell = "yes"', "attention.bell: expected true or false, got 'yes'"),
    ],
)
def test_a_bad_attention_table_is_refused_naming_the_field(table: str, problem: str) -> None:
    text = f'[[session]]\nname = "a"\ncommand = "true"\nattention = {{ {table} }}\n'
    with pytest.raises(DeckError) as caught:
        parse_deck(text, Path("/tmp/deck.toml"))
    assert f"session[1] (a).{problem}" in str(caught.value)


def test_attention_defaults_mark_idle_after_ten_seconds_and_on_every_signal() -> None:
    deck = parse_deck('[[session]]\nname = "a"\ncommand = "true"\n', Path("/tmp/deck.toml"))
    spec = deck.sessions[0].attention
    assert (spec.idle, spec.bell, spec.notify, spec.bus) == (10.0, True, True, True)
    off = parse_deck(
        '[[session]]\nname = "a"\ncommand = "true"\nattention = { idle = "off" }\n',
        Path("/tmp/deck.toml"),
    )
    assert off.sessions[0].attention.idle is None
