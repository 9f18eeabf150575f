"""The room shows the deck's hosts: each connection in the pool panel, and a notice naming
the host when it drops (its sessions go `lost`), so the operator knows which machine failed,
and once when its sshd will not forward the bus."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from textual.widgets import Static

from engine.states import SessionState
from tests.sshd_support import running_sshd
from tests.support import wait_state
from tests.test_hosts_engine import DEADLINE, host_table, session
from tests.tui_support import open_room, until

if TYPE_CHECKING:
    from pathlib import Path

    from tests.sshd_support import Sshd
    from tui.app import ControlRoom

pytestmark = pytest.mark.anyio


def hosts_block(app: ControlRoom) -> str:
    return str(app.screen_stack[0].query_one("#pool-hosts", Static).render())


async def test_the_pool_panel_shows_a_host_and_the_room_says_when_it_drops(
    sshd: Sshd, tmp_path: Path
) -> None:
    body = host_table(sshd) + session("remote", "echo up; sleep 600")
    async with open_room(tmp_path, body) as (engine, app, pilot):
        await wait_state(engine, "remote", SessionState.ACTIVE, timeout=DEADLINE)
        await until(pilot, lambda: "host box1: up" in hosts_block(app), timeout=DEADLINE)
        # a warm terminal holds two channels: its PTY and its launcher's control stream
        # (a sample taken during an RTT probe shows one more)
        await until(pilot, lambda: "channels 2/10" in hosts_block(app), timeout=DEADLINE)
        # its session, of pool.size
        await until(pilot, lambda: "slots 1/2" in hosts_block(app), timeout=DEADLINE)
        sshd.stop()  # the machine goes away, and stays away
        await wait_state(engine, "remote", SessionState.LOST, timeout=DEADLINE)
        await until(pilot, lambda: "host box1: DOWN" in hosts_block(app), timeout=DEADLINE)
        notices = [n.message for n in app._notifications]
        assert any(m.startswith("host box1: ") for m in notices), notices


async def test_a_deck_without_hosts_shows_no_host_block(tmp_path: Path) -> None:
    async with open_room(tmp_path, '[[session]]\nname = "a"\ncommand = "sleep 60"\n') as (
        engine,
        app,
        pilot,
    ):
        await wait_state(engine, "a", SessionState.ACTIVE)
        await pilot.pause(1.5)  # a contention sample or two
        assert not app.screen_stack[0].query_one("#pool-hosts", Static).display


async def test_the_room_says_once_that_a_hosts_sshd_refuses_to_forward_the_bus(
    tmp_path: Path,
) -> None:
    body = session("a", "echo up; sleep 600") + session("b", "echo up; sleep 600")
    with running_sshd(tmp_path / "strict", ["AllowStreamLocalForwarding no"]) as strict:
        async with open_room(tmp_path, host_table(strict) + body) as (engine, app, pilot):
            for name in ("a", "b"):
                await wait_state(engine, name, SessionState.ACTIVE, timeout=DEADLINE)
            await until(pilot, lambda: "no bus" in hosts_block(app), timeout=DEADLINE)
            await pilot.pause(1.5)  # another sample or two: still one notice
            notices = [n.message for n in app._notifications if "forward the bus" in n.message]
    assert len(notices) == 1, notices
    assert "host 'box1'" in notices[0]
    assert "AllowStreamLocalForwarding" in notices[0]
