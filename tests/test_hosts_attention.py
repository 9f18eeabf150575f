"""Attention on a [[host]]: a remote session at a prompt gets the idle mark, asked of the
host by a short probe (engine/terminals/hosts/remote_foreground.py), over a real sshd."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from engine.states import SessionState
from engine.terminals.foreground import POLLS
from tests.support import running, wait_state, wait_text
from tests.test_hosts_engine import DEADLINE, host_table, session

if TYPE_CHECKING:
    from pathlib import Path

    from engine.engine import Engine
    from engine.terminals.hosts.remote_base import RemoteBase
    from tests.sshd_support import Sshd

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not POLLS, reason="no syscall table for this machine"),
]
PROMPT = "bash-"  # the start of bash's default prompt
SHELL = "exec bash --norc --noprofile -i"


def remote_terminal(engine: Engine, name: str) -> RemoteBase:
    term = engine.sessions[name].terminal
    assert term is not None
    assert term.kind == "remote"
    return term


async def answer_after_probes(term: RemoteBase, probes: int = 2) -> bool:
    """Ask as the session does until `probes` more probes have answered; the last answer."""
    foreground = term.foreground
    assert foreground is not None
    target = foreground.probes + probes
    with anyio.fail_after(DEADLINE):
        while foreground.probes < target:
            term.waits_for_keys()
            await anyio.sleep(0.05)
    return term.waits_for_keys()


async def test_a_shell_on_a_host_quiet_at_its_prompt_is_marked_idle(
    sshd: Sshd, tmp_path: Path
) -> None:
    body = host_table(sshd) + session("sh", SHELL, 'attention = { idle = "0.3s" }')
    async with running(tmp_path, body) as engine:
        await wait_text(engine, "sh", PROMPT, timeout=DEADLINE)
        with anyio.fail_after(DEADLINE):
            while engine.session_info("sh").attention != "idle":
                await anyio.sleep(0.05)
        await engine.focus("sh")
        assert engine.session_info("sh").attention == ""


async def test_a_shell_on_a_host_running_a_command_does_not_wait_for_keys(
    sshd: Sshd, tmp_path: Path
) -> None:
    body = host_table(sshd) + session("sh", SHELL, 'attention = { idle = "off" }')
    async with running(tmp_path, body) as engine:
        await wait_text(engine, "sh", PROMPT, timeout=DEADLINE)
        term = remote_terminal(engine, "sh")
        assert await answer_after_probes(term)
        await engine.send_input("sh", b"sleep 30; echo woke\r")
        await wait_text(engine, "sh", "sleep 30", timeout=DEADLINE)  # echoed: sleep runs
        assert not await answer_after_probes(term)  # sleep's group holds the tty
        await engine.sessions["sh"].terminate()


RAW_POLL = "import select, tty; tty.setraw(0); print('raw'); select.select([0], [], [])"
SERVER = (
    "import select, socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen();"
    " print('serving'); select.select([s], [], [])"
)


@pytest.mark.parametrize(("program", "waits"), [(RAW_POLL, True), (SERVER, False)])
async def test_a_poll_on_a_host_waits_for_keys_only_with_the_terminal_in_non_canonical_mode(
    sshd: Sshd, tmp_path: Path, program: str, waits: bool
) -> None:
    """The program is the job itself (an argv, no shell around it), as in tests/test_attention.py:
    its group's leader is what is asked about."""
    argv = f'["python3", "-c", "{program}"]'
    body = host_table(sshd) + session("p", "x").replace('command = "x"', f"command = {argv}")
    async with running(tmp_path, body) as engine:
        await wait_text(engine, "p", "raw" if waits else "serving", timeout=DEADLINE)
        term = remote_terminal(engine, "p")
        if waits:  # it printed before it called select: a probe may still catch the write
            with anyio.fail_after(DEADLINE):
                while not await answer_after_probes(term):
                    pass
        assert await answer_after_probes(term) is waits  # and from then on, every time
        await engine.sessions["p"].terminate()
        await wait_state(engine, "p", SessionState.TERMINATED, timeout=DEADLINE)
