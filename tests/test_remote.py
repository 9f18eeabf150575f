"""What only a served engine does: many clients, roles, flow control, versions."""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from engine.errors import SwarmdeckError
from engine.events import CommandRefused
from engine.remote.control_server import open_control_server
from engine.remote.mirror import Mirror
from engine.remote.protocol import VERSION, LineSocket, decode, encode
from engine.remote.remote_engine import open_remote_engine
from engine.remote.remote_errors import NotPermittedError, ProtocolVersionError
from engine.states import SessionState as S
from tests.remote_support import (
    attached,
    eventually,
    screen_text,
    serving,
    short_dir,
    wait_shows,
)
from tests.support import running

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

DECK = """
[[session]]
name = "cat"
command = "exec cat"
"""

FLOOD = """
[[session]]
name = "flood"
command = "yes \\"$(printf '%0190d' 0)\\" | head -n 300000; echo flood-done; exec sleep 60"
cols = 200
rows = 50
"""


async def _raw_hello(path: Path, role: str) -> tuple[LineSocket, Any, dict[str, Any]]:
    stream = LineSocket(await anyio.connect_unix(path))
    await stream.send(encode({"op": "hello", "req": 0, "protocol": VERSION, "role": role}))
    frames = stream.lines(1 << 26)
    return stream, frames, decode(await anext(frames))


async def test_two_clients_see_the_same_output(tmp_path: Path) -> None:
    async with (
        running(tmp_path, DECK) as engine,
        serving(engine) as server,
        attached(server) as one,
        attached(server, "viewer") as two,
    ):
        await eventually(lambda: one.session_info("cat").state is S.ACTIVE)
        await one.send_input("cat", b"shared-line\r")
        await wait_shows(one, "cat", "shared-line")
        await wait_shows(two, "cat", "shared-line")
        assert one.screen_snapshot("cat").lines == two.screen_snapshot("cat").lines


async def test_a_viewer_is_refused_control_and_input_by_the_server_and_nothing_changes(
    tmp_path: Path,
) -> None:
    async with (
        running(tmp_path, DECK) as engine,
        serving(engine) as server,
        attached(server) as operator,
        attached(server, "viewer") as viewer,
    ):
        await eventually(lambda: operator.session_info("cat").state is S.ACTIVE)
        shape = (engine.session_info("cat").cols, engine.session_info("cat").rows)
        with operator.subscribe() as events:
            with pytest.raises(NotPermittedError, match="viewer"):
                await viewer.pause("cat")
            with pytest.raises(NotPermittedError):
                await viewer.resize("cat", 50, 10)  # the server refuses it too
            stream, frames, _ = await _raw_hello(server.socket_path, "viewer")
            async with stream.stream:  # a modified client: the server still says no
                for op, extra in (
                    ("send_input", {"data": "eHgK"}),
                    ("resize", {"cols": 50, "rows": 10}),
                ):
                    await stream.send(encode({"op": op, "req": 1, "session": "cat", **extra}))
                    reply = decode(await anext(frames))
                    while "re" not in reply:
                        reply = decode(await anext(frames))
                    assert reply["error"]["type"] == "NotPermittedError"
                await frames.aclose()
            refused = [e async for e in _take(events, CommandRefused, 3)]
        assert {e.command for e in refused} == {"pause", "send_input", "resize"}
        assert engine.session_info("cat").state is S.ACTIVE
        assert (engine.session_info("cat").cols, engine.session_info("cat").rows) == shape
        assert "xx" not in screen_text(engine, "cat")


async def _take(events: Any, kind: type[Any], count: int) -> Any:
    with anyio.fail_after(5):
        async for event in events:
            if isinstance(event, kind):
                yield event
                count -= 1
                if count == 0:
                    return


@pytest.mark.slow
async def test_a_client_that_never_reads_stalls_neither_engine_nor_peers_then_catches_up(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, FLOOD) as engine, serving(engine) as server:
        stream, frames, hello = await _raw_hello(server.socket_path, "operator")
        async with stream.stream, attached(server) as fast:
            screens = 0
            with fast.subscribe() as events:
                await wait_shows(fast, "flood", "flood-done", timeout=30)
                async for _ in _drain(events):
                    screens += 1
            slow = server.clients[hello["result"]["client"]]
            assert slow.outbox.backlog < 64 << 10  # facts only; screens stay coalesced
            mirror, slow_screens = Mirror(hello["result"]), 0
            with anyio.fail_after(20):
                async for line in frames:
                    frame = decode(line)
                    slow_screens += frame.get("push") == "screen"
                    mirror.apply(frame)
                    text = mirror.screens["flood"].snapshot().lines
                    if any("flood-done" in "".join(t for t, _ in row) for row in text):
                        break
            await frames.aclose()
        assert slow_screens < screens / 2, (slow_screens, screens)


async def _drain(events: Any) -> Any:
    while True:
        try:
            yield events.receive_nowait()
        except anyio.WouldBlock:
            return


async def test_resize_follows_the_most_recent_operator(tmp_path: Path) -> None:
    async with (
        running(tmp_path, DECK) as engine,
        serving(engine) as server,
        attached(server) as one,
        attached(server) as two,
    ):
        await eventually(lambda: one.session_info("cat").state is S.ACTIVE)
        await one.resize("cat", 100, 30)
        await eventually(lambda: two.session_info("cat").cols == 100)
        await two.resize("cat", 90, 20)
        await eventually(
            lambda: (one.session_info("cat").cols, one.session_info("cat").rows) == (90, 20)
        )
        assert engine.session_info("cat").cols == 90


async def test_a_protocol_version_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    async with running(tmp_path, DECK) as engine, serving(engine) as server:
        with pytest.raises(ProtocolVersionError, match=f"server speaks protocol {VERSION}"):
            async with open_remote_engine(server.socket_path, protocol=VERSION + 1):
                pass


async def test_a_second_server_refuses_a_live_socket_and_replaces_a_stale_one(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, DECK) as engine, serving(engine) as server:
        with pytest.raises(SwarmdeckError, match=f"already served by pid {os.getpid()}"):
            async with open_control_server(engine, server.socket_path):
                pass
        async with attached(server) as remote:  # the first server still answers
            assert remote.server_pid == os.getpid()
    with short_dir() as directory:
        stale = directory / "stale.sock"
        with socket.socket(socket.AF_UNIX) as dead:
            dead.bind(str(stale))  # bound, never listening: what a killed server leaves
        async with (
            running(tmp_path, DECK) as engine,
            open_control_server(engine, stale),
            open_remote_engine(stale, "viewer") as remote,
        ):
            assert remote.session_info("cat").name == "cat"


def test_the_outbox_sends_the_screen_it_sent_longest_ago_first() -> None:
    """A quiet session's change (a key's echo) must not wait behind a round of floods."""
    from engine.remote.outbox import Outbox

    outbox = Outbox()
    for name in ("flood-1", "flood-2"):
        outbox.mark_screen(name)
    assert [outbox.take_screen(), outbox.take_screen(), outbox.take_screen()] == [
        "flood-1",
        "flood-2",
        None,
    ]
    outbox.mark_screen("flood-2")
    outbox.mark_screen("flood-1")
    outbox.mark_screen("echo")  # never sent: oldest of all
    assert outbox.take_screen() == "echo"
    assert outbox.take_screen() == "flood-1"  # sent before flood-2 last time
    outbox.mark_screen("echo")
    assert outbox.take_screen() == "flood-2"
    assert outbox.take_screen() == "echo"


async def test_a_viewer_attached_before_a_fork_of_a_fork_knows_each_forks_spec(
    tmp_path: Path,
) -> None:
    """Run-time sessions are as fully known to an attached client as the deck's own:
    its mirror holds their specs (what the fork dialog and a local fork rule read)."""
    body = '[[session]]\nname = "base"\ncommand = "exec sleep 30"\n'
    async with (
        running(tmp_path, body) as engine,
        serving(engine) as server,
        attached(server, "viewer") as viewer,
        attached(server) as operator,
    ):
        first = await operator.fork("base", {"env": {"A": "1"}})
        second = await operator.fork(first, {"env": {"B": "2"}})
        await eventually(lambda: second in [s.name for s in viewer.list_sessions()])
        mirror = viewer._mirror  # what the client knows, spec included
        assert mirror.spec(first).env == {"A": "1"}
        assert mirror.spec(second).env == {"A": "1", "B": "2"}
