"""The PTY relay: terminals' output comes through it, in order, with flow control, and
losing it costs speed, not output or sessions."""

from __future__ import annotations

import os
import signal
import socket
import stat
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from engine.deck.spec import PoolSpec
from engine.engine import open_engine
from engine.states import SessionState
from engine.terminals.fresh import FreshTerminal
from engine.terminals.pool import open_pool
from engine.terminals.pooled import PooledTerminal
from engine.terminals.pty import open_pty, read_available, spawn_on_pty
from engine.terminals.relay import open_relay
from engine.terminals.terminal import Job, base_env
from tests.support import make_deck, running, wait_state, wait_text
from tests.test_recorder import read_cast

if TYPE_CHECKING:
    from pathlib import Path

    from engine.engine import Engine
    from engine.terminals.relay import PtyRelay

pytestmark = pytest.mark.anyio


def spec(**fields: Any) -> PoolSpec:
    return PoolSpec(**{"size": 2, "warm": 1, "acquire_timeout": 10, **fields})


async def _until(check: Any, timeout: float = 10) -> None:
    with anyio.fail_after(timeout):
        while not check():
            await anyio.sleep(0.01)


async def _kill_relay(engine: Engine) -> PtyRelay:
    """SIGKILL the pool's relay and wait until the engine has noticed; return it."""
    relay = engine.pool._relay
    assert relay is not None
    os.kill(relay.pid, signal.SIGKILL)
    await _until(lambda: not relay.alive)
    return relay


def _pipes_open() -> int:
    return sum(
        stat.S_ISFIFO(os.stat(f"/proc/self/fd/{fd}").st_mode)
        for fd in os.listdir("/proc/self/fd")
        if os.path.exists(f"/proc/self/fd/{fd}")
    )


async def test_a_pooled_job_reads_through_the_relay_every_byte_in_order() -> None:
    async with open_pool(spec()) as pool:
        relay = pool._relay
        assert relay is not None
        assert relay.alive
        assert await anyio.Path(f"/proc/{relay.pid}").exists()
        term = await pool.acquire()
        assert isinstance(term, PooledTerminal)
        got = bytearray()
        script = "import sys\nfor i in range(20000): sys.stdout.write(f'line {i:05d}\\n')"
        await term.start(Job(["python3", "-c", script]), got.extend)
        assert (await term.wait()).ok
        lines = bytes(got).decode().split("\r\n")
        assert lines[:-1] == [f"line {i:05d}" for i in range(20000)]
        pool.release(term)


async def test_a_terminal_reads_its_pty_itself_once_the_relay_dies() -> None:
    async with open_pool(spec(size=1)) as pool:
        relay = pool._relay
        assert relay is not None
        term = await pool.acquire()
        assert isinstance(term, PooledTerminal)
        got = bytearray()
        script = "for i in 1 2 3 4; do echo tick-$i; sleep 0.3; done"
        await term.start(Job(["bash", "-c", script]), got.extend)
        await _until(lambda: b"tick-1" in got)
        os.kill(relay.pid, signal.SIGKILL)
        with anyio.fail_after(10):
            status = await term.wait()
        assert status.ok
        assert b"tick-4" in got  # later output came straight from the PTY
        assert not relay.alive
        pool.release(term)
        second = await pool.acquire()  # the same terminal, healthy, reading directly
        assert second is term
        more = bytearray()
        await second.start(Job(["echo", "after"]), more.extend)
        assert (await second.wait()).ok
        assert b"after" in more
        pool.release(second)


async def test_a_fresh_terminal_ends_with_the_relay_saying_eof() -> None:
    async with open_relay() as relay, anyio.create_task_group() as tg:
        assert relay is not None
        pipes = _pipes_open()
        term = FreshTerminal(80, 24, relay)
        got = bytearray()
        await term.start(Job(["printf", "fresh-end"]), got.extend, tg)
        assert (await term.wait()).ok
        assert b"fresh-end" in got
        await term.aclose()
        assert relay.alive  # a real end of file, not the relay dying
        assert _pipes_open() == pipes  # the relay's pipe went with the terminal


async def test_an_undrained_pipe_holds_the_program_back_and_loses_nothing() -> None:
    """Flow control: while the engine's end of a pipe is not read, the relay stops reading
    that PTY and the program blocks; another terminal keeps flowing; then every byte comes."""
    total = 8 * 1024 * 1024
    writer = f"import sys; sys.stdout.buffer.write(b'x' * {total}); sys.stdout.flush()"
    async with open_relay() as relay:
        assert relay is not None
        master, slave = open_pty(80, 24)
        other_master, other_slave = open_pty(80, 24)
        procs = []
        pipe = other = None
        try:
            pipe = relay.attach(1, master)
            other = relay.attach(2, other_master)
            assert pipe is not None
            assert other is not None
            procs.append(spawn_on_pty(["python3", "-c", writer], slave, env=base_env()))
            await anyio.sleep(1.0)  # nobody reads `pipe`
            assert procs[0].poll() is None  # blocked on its full terminal
            procs.append(spawn_on_pty(["echo", "still-flowing"], other_slave, env=base_env()))
            seen = b""
            with anyio.fail_after(10):
                while b"still-flowing" not in seen:
                    await anyio.wait_readable(other)
                    seen += read_available(other, 65536)[0]
            got = 0
            with anyio.fail_after(30):
                while got < total:
                    await anyio.wait_readable(pipe)
                    got += len(read_available(pipe, 1 << 20)[0])
                while procs[0].poll() is None:
                    await anyio.sleep(0.01)
            assert got == total
            assert procs[0].returncode == 0
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()
            relay.detach(1)
            relay.detach(2)
            for fd in (master, slave, other_master, other_slave):
                os.close(fd)
            for end in (pipe, other):
                if end is not None:
                    os.close(end)


def _cast_text(path: Path) -> tuple[dict[str, Any], str, list[str]]:
    header, events = read_cast(path)
    output = "".join(text for _, code, text in events if code == "o")
    return header, output, [text for _, code, text in events if code == "r"]


async def test_the_relay_records_each_job_up_to_its_end_marker(tmp_path: Path) -> None:
    body = (
        '[[session]]\nname = "one"\ncommand = ["printf", "first \\\\033[1mjob\\\\033[0m é"]\n'
        '[[session]]\nname = "two"\ncommand = ["printf", "second job"]\n'
        'depends_on = ["one"]\n'
    )
    async with running(tmp_path, body, pool="size = 1\nwarm = 1") as engine:
        assert await engine.wait_finished()
    casts = tmp_path / "run" / "sessions"
    header, one, _ = _cast_text(casts / "one.cast")
    assert (header["version"], header["title"]) == (2, "one")
    assert one == "first \x1b[1mjob\x1b[0m é"  # exactly the job's bytes: no marker, no prompt
    _, two, _ = _cast_text(casts / "two.cast")
    assert two == "second job"


async def test_a_resize_is_recorded_where_it_happened(tmp_path: Path) -> None:
    body = '[[session]]\nname = "cat"\ncommand = ["cat"]\n'
    async with running(tmp_path, body) as engine:
        await wait_state(engine, "cat", SessionState.ACTIVE)
        await engine.send_input("cat", b"before\r")
        await wait_text(engine, "cat", "before")
        await engine.resize("cat", 100, 30)
        await engine.send_input("cat", b"after\r")
        await wait_text(engine, "cat", "after")
        await engine.terminate("cat")
        await engine.wait_finished()
    _, output, resizes = _cast_text(tmp_path / "run" / "sessions" / "cat.cast")
    assert resizes == ["100x30"]
    assert output.index("before") < output.index("after")


async def test_without_its_relay_the_engine_reads_and_records_itself(tmp_path: Path) -> None:
    body = '[[session]]\nname = "late"\ncommand = ["bash", "-c", "sleep 0.5; echo recorded-here"]\n'
    deck = make_deck(tmp_path, body, "size = 1\nwarm = 1")
    async with open_engine(deck, tmp_path / "run") as engine:
        await _kill_relay(engine)
        await engine.start_all()
        assert await engine.wait_finished()
        assert any("recorded-here" in line for line in engine.sessions["late"].screen.text())
    _, output, _ = _cast_text(tmp_path / "run" / "sessions" / "late.cast")
    assert "recorded-here" in output


async def test_a_dead_relay_is_replaced_and_new_terminals_use_the_new_one(tmp_path: Path) -> None:
    body = '[[session]]\nname = "later"\ncommand = ["echo", "through-the-new-relay"]\n'
    deck = make_deck(tmp_path, body, "size = 1\nwarm = 0\ncols = 80\nrows = 24")
    async with open_engine(deck, tmp_path / "run") as engine:
        first = await _kill_relay(engine)
        await _until(lambda: engine.pool._relay not in (None, first))
        second = engine.pool._relay
        assert second is not None
        assert second.alive
        await engine.start_all()  # no warm terminal: this one is made now, on the new relay
        assert await engine.wait_finished()
        term = engine.sessions["later"].terminal
        assert term is not None
        assert term.kind != "remote"
        assert term._relay is second
    _, output, _ = _cast_text(tmp_path / "run" / "sessions" / "later.cast")
    assert "through-the-new-relay" in output


async def test_a_recording_the_relay_began_is_finished_by_the_engine_when_it_dies(
    tmp_path: Path,
) -> None:
    """Nothing printed is lost from the recording: the relay wrote every event it took
    (unbuffered), the engine appends the rest after the relay's last whole line."""
    script = "for i in 1 2 3 4; do echo tick-$i; sleep 0.3; done"
    body = f'[[session]]\nname = "ticks"\ncommand = ["bash", "-c", "{script}"]\n'
    deck = make_deck(tmp_path, body, "size = 1\nwarm = 1")
    async with open_engine(deck, tmp_path / "run") as engine:
        await engine.start_all()
        await wait_text(engine, "ticks", "tick-1")
        await _kill_relay(engine)
        assert await engine.wait_finished()
    _, output, _ = _cast_text(tmp_path / "run" / "sessions" / "ticks.cast")  # every line JSON
    ticks = [line for line in output.split("\r\n") if line.startswith("tick-")]
    assert ticks == ["tick-1", "tick-2", "tick-3", "tick-4"]


def test_recordings_ordered_ahead_open_one_per_end_marker(tmp_path: Path) -> None:
    """A job's follower, and that follower's own follower, may both be ordered before the
    running job's marker has come through: each recording opens at the marker before it,
    and a dropped one leaves no file."""
    from engine.terminals import relay_process

    marker = b"\x1b]6973;end\x07"
    ctl, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    master, pipe = os.pipe()
    try:
        _play_orders_ahead(
            tmp_path, relay_process.Relay(ctl), relay_process.Link(b"1", master, pipe, marker)
        )
    finally:
        for fd in (master, pipe):
            os.close(fd)
        ctl.close()
        peer.close()


def _play_orders_ahead(tmp_path: Path, relay: Any, link: Any) -> None:
    marker = link.marker

    def order(name: str) -> dict[str, object]:
        return {"path": str(tmp_path / f"{name}.cast"), "header": {"version": 2, "title": name}}

    relay.record(link, order("a"))
    relay.record(link, order("b"))  # a's follower
    relay.record(link, order("c"))  # b's follower
    relay.record(link, order("gone"))
    relay.discard(link, str(tmp_path / "gone.cast"))  # dropped while queued
    relay.tap(link, b"a-out" + marker[:4])
    relay.tap(link, marker[4:] + b"b-out" + marker + b"c-")
    relay.tap(link, b"out" + marker)
    texts = {name: _cast_text(tmp_path / f"{name}.cast")[1] for name in ("a", "b", "c")}
    assert texts == {"a": "a-out", "b": "b-out", "c": "c-out"}
    assert not (tmp_path / "gone.cast").exists()
    relay.record(link, order("late"))  # nothing runs now: it opens at once
    relay.discard(link, str(tmp_path / "late.cast"))  # ... and a dropped one leaves no file
    assert not (tmp_path / "late.cast").exists()
