"""A flood never slows the session being typed into: the interactive one goes first.

Ordering is checked structurally (who is served first when both are ready), never by
wall-clock speed; the speed figures live in bench/keys.py.
"""

from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING

import anyio
import pytest

from engine.engine import FLOOD_STREAK, INTERACTIVE_FRAME
from engine.errors import UnknownSessionError
from engine.events import ScreenChanged
from engine.hub import EventHub
from engine.remote.outbox import Outbox
from engine.states import SessionState
from engine.terminals import relay_process
from engine.terminals.pty import open_pty
from engine.terminals.turns import ReadTurns
from tests.support import running, wait_state, wait_text
from tests.tui_support import open_room, session, until

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

BODY = session("echo", "exec cat") + session("flood", "exec yes swarmdeck-flood-line")


def _readable(*fds: int) -> None:
    """Block (briefly) until every fd has data: the PTY layer hands writes on lazily."""
    import select

    for fd in fds:
        assert select.select([fd], [], [], 10)[0], f"fd {fd} never became readable"


def test_the_relay_reads_an_interactive_pty_before_a_flooding_one() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    theirs.setblocking(False)
    relay = relay_process.Relay(theirs)
    shared_read, shared_write = os.pipe()  # both links write here: the pipe shows the order
    (flood_master, flood_slave), (echo_master, echo_slave) = open_pty(80, 24), open_pty(80, 24)
    try:
        relay.apply(b"add 1 ", [flood_master, os.dup(shared_write)])  # registered first
        relay.apply(b"add 2 ", [echo_master, os.dup(shared_write)])
        relay.apply(b"pri 2 inf", [])
        os.write(flood_slave, b"F" * 4000)
        os.write(echo_slave, b"typed")
        _readable(flood_master, echo_master)
        relay.round(timeout=5)
        out = os.read(shared_read, 65536)
        assert out.startswith(b"typed"), out[:20]
        assert out.count(b"F") == 4000  # the flood is read in the same round, after it
    finally:
        for link in list(relay.links.values()):
            relay.drop(link)
        for fd in (flood_slave, echo_slave, shared_read, shared_write):
            os.close(fd)
        ours.close()
        theirs.close()


async def test_a_flood_read_holds_its_turn_so_an_interactive_read_goes_before_the_next() -> None:
    turns, order = ReadTurns(), []

    async def flood(name: str) -> None:
        async with turns.turn():
            order.append(name)

    async def interactive() -> None:  # woken in the same loop turn, after both floods
        order.append("typed")

    async with anyio.create_task_group() as tg:
        tg.start_soon(flood, "flood-a")
        tg.start_soon(flood, "flood-b")
        tg.start_soon(interactive)
    assert order == ["flood-a", "typed", "flood-b"]
    assert turns.waits == 1
    assert turns.queued == 0


async def _flood_share(turns: ReadTurns, seconds: float, work: float = 0.002) -> float:
    """Share of the loop's time that three busy floods (`work` s per slice) take."""
    busy = 0.0

    async def flood() -> None:
        nonlocal busy
        while True:
            async with turns.turn():
                began = time.monotonic()
                while time.monotonic() - began < work:
                    pass
                busy += time.monotonic() - began

    began = time.monotonic()
    with anyio.move_on_after(seconds):
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(flood)
    return busy / (time.monotonic() - began)


async def test_while_someone_types_floods_leave_half_the_loop_free() -> None:
    turns = ReadTurns()
    alone = await _flood_share(turns, 0.5)
    turns.focused = 1  # an operator room has a pane focused: turns, but no rest
    focused = await _flood_share(turns, 0.5)
    turns.typed_until = time.monotonic() + 10  # and types into it
    typed = await _flood_share(turns, 0.5)
    assert alone > 0.8, alone
    assert focused > 0.8, focused
    assert typed < 0.6, typed


async def test_short_flood_slices_still_get_about_half_the_loop_while_someone_types() -> None:
    """A 0.2 ms slice followed by its own 0.2 ms rest slept a millisecond or more (the
    loop's timer): floods got a fraction of the loop. The rest is taken in quanta."""
    turns = ReadTurns()
    turns.typed_until = time.monotonic() + 10
    share = await _flood_share(turns, 0.5, work=0.0002)
    assert 0.35 < share < 0.65, share


async def test_typed_text_reaches_the_focused_screen_in_order_while_a_flood_runs(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, BODY) as engine:
        await wait_state(engine, "echo", SessionState.ACTIVE)
        await wait_text(engine, "flood", "swarmdeck-flood-line")
        await engine.focus("echo")
        assert engine.interactive("echo")
        assert not engine.interactive("flood")
        flood_screen = engine.sessions["flood"].screen
        tokens = [f"tok{n}" for n in range(8)]
        for token in tokens:
            revision = flood_screen.revision
            await engine.send_input("echo", token.encode())
            await wait_text(engine, "echo", "".join(tokens[: tokens.index(token) + 1]))
            await wait_text(engine, "flood", "swarmdeck-flood-line")
            assert engine.sessions["flood"].state is SessionState.ACTIVE
        assert flood_screen.revision > revision  # it kept flooding all along
        assert engine.sessions["echo"].screen.text()[0].startswith("".join(tokens))


async def test_the_outbox_pushes_the_interactive_screen_before_a_flood_sent_longer_ago(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, BODY) as engine:
        await wait_state(engine, "echo", SessionState.ACTIVE)
        await wait_state(engine, "flood", SessionState.ACTIVE)
        outbox = Outbox(interactive=engine.interactive)
        outbox.mark_screen("flood")
        outbox.mark_screen("echo")
        assert outbox.take_screen() == "flood"  # nobody types: the one sent longest ago
        assert outbox.take_screen() == "echo"
        outbox.mark_screen("flood")
        outbox.mark_screen("echo")  # sent more recently than the flood
        await engine.focus("echo")
        assert outbox.take_screen() == "echo"
        assert outbox.take_screen() == "flood"
        await engine.focus(None)
        assert not engine.interactive("echo")


async def test_the_hub_never_skips_the_interactive_screen_for_a_subscriber_behind(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, BODY) as engine:
        await wait_state(engine, "echo", SessionState.ACTIVE)
        await engine.focus("echo")
        hub = EventHub(backlog=1, interactive=engine.interactive)
        events = hub.subscribe()
        for session in ("flood", "flood", "echo"):  # the second flood change is skipped
            hub.emit(ScreenChanged(session=session, revision=1))
        hub.close()
        with events:
            received = [e.session async for e in events if isinstance(e, ScreenChanged)]
        assert received == ["flood", "echo"]
        assert hub.skipped == 1


async def test_input_makes_a_session_interactive_for_a_second(tmp_path: Path) -> None:
    async with running(tmp_path, BODY) as engine:
        await wait_state(engine, "echo", SessionState.ACTIVE)
        assert not engine.interactive("echo")
        await engine.send_input("echo", b"x")
        assert engine.interactive("echo")
        assert not engine.interactive("flood")
        await anyio.sleep(1.2)
        assert not engine.interactive("echo")


async def test_focusing_an_unknown_session_is_refused_by_name(tmp_path: Path) -> None:
    async with running(tmp_path, BODY) as engine:
        with pytest.raises(UnknownSessionError, match="nope"):
            await engine.focus("nope")


async def test_a_focused_session_does_not_pass_its_priority_to_the_next_job_on_its_terminal(
    tmp_path: Path,
) -> None:
    body = session("first", "read line") + session("second", "exec cat")
    async with running(tmp_path, body, pool="size = 1\nwarm = 1") as engine:
        await wait_state(engine, "first", SessionState.ACTIVE)
        await engine.focus("first")
        terminal = engine.sessions["first"].terminal
        assert terminal is not None
        assert terminal.focused
        await engine.send_input("first", b"done\n")
        await wait_state(engine, "second", SessionState.ACTIVE)
        assert engine.sessions["second"].terminal is terminal  # the same pooled PTY
        assert not terminal.focused
        assert not engine.interactive("second")


@pytest.mark.slow
async def test_the_room_tells_the_engine_which_pane_it_types_into(tmp_path: Path) -> None:
    async with open_room(tmp_path, BODY) as (engine, app, pilot):
        await wait_state(engine, "echo", SessionState.ACTIVE)
        pane = app.query_one("#panes").panes["echo"]  # type: ignore[attr-defined]
        pane.focus()
        await until(pilot, lambda: engine.sessions["echo"].interactive())
        assert not engine.interactive("flood")
        app.set_focus(None)
        await until(pilot, lambda: not engine.sessions["echo"].focused)


async def test_floods_take_turns_only_while_someone_is_interactive(tmp_path: Path) -> None:
    """With nobody typing, flood reads go back to back (ingest keeps its speed); focusing
    or typing into a session makes every other reader take turns."""
    async with running(tmp_path, BODY) as engine:
        await wait_state(engine, "echo", SessionState.ACTIVE)
        turns = engine.pool.turns
        assert not turns.contended()
        await engine.focus("echo")
        assert turns.contended()
        await engine.focus(None)
        assert not turns.contended()
        await engine.send_input("echo", b"x")
        assert turns.contended()  # for a second after the key


async def test_a_flooding_screen_is_announced_at_the_flood_rate_and_its_last_change_too(
    tmp_path: Path,
) -> None:
    """Rooms repaint a flooding pane at ~10 Hz, so the engine announces it no faster (not
    at the 30 Hz frame rate); when the flood stops, its final screen is still announced."""
    gate = tmp_path / "stop"
    flood = f"while [ ! -e {gate} ]; do echo swarmdeck-flood-line; done; echo flood-over; exec cat"
    async with running(tmp_path, session("flood", flood)) as engine:
        stamps: list[tuple[float, int]] = []

        async def collect() -> None:
            with engine.subscribe() as events:
                async for event in events:
                    if isinstance(event, ScreenChanged) and event.session == "flood":
                        stamps.append((time.monotonic(), event.revision))

        async with anyio.create_task_group() as tg:
            tg.start_soon(collect)
            await wait_text(engine, "flood", "swarmdeck-flood-line")
            began = time.monotonic()
            await anyio.sleep(3)
            gate.touch()
            await wait_text(engine, "flood", "flood-over")
            screen = engine.sessions["flood"].screen
            with anyio.fail_after(10):
                while not stamps or stamps[-1][1] != screen.revision:
                    await anyio.sleep(0.05)
            tg.cancel_scope.cancel()
        flooding = [t for t, _ in stamps if began + 1 < t < began + 3]
        assert len(flooding) >= 2
        rate = (len(flooding) - 1) / (flooding[-1] - flooding[0])
        assert rate <= 15, rate


async def test_an_interactive_screen_touched_again_within_its_frame_is_not_left_to_the_flood_rule(
    tmp_path: Path,
) -> None:
    """A typist who waits for each echo keys again a few ms after it was announced, inside
    INTERACTIVE_FRAME: that change gets a trailing edge of its own. On the frame ticker the
    session was dirty on every frame, so it looked like a flood and each key's echo waited
    for the 10 Hz flood rate (100 ms a key, bench/keys.py's idle phase)."""
    async with running(tmp_path, BODY) as engine:
        await wait_state(engine, "echo", SessionState.ACTIVE)
        await engine.focus("echo")
        with engine.subscribe() as events:
            for _ in range(3 * FLOOD_STREAK):
                await anyio.sleep(2 * INTERACTIVE_FRAME)
                engine._screen_touched("echo")  # the echo, announced at once
                engine._screen_touched("echo")  # the next key's, under a frame later
                assert "echo" not in engine._dirty
                with anyio.fail_after(5):
                    seen = 0
                    while seen < 2:
                        event = await events.receive()
                        seen += isinstance(event, ScreenChanged) and event.session == "echo"
                assert engine._streak.get("echo", 0) == 0
