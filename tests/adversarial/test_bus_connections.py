"""Attacks on the bus's connections: floods of waiting requests, idle connections that never
say hello, more connections than the process has descriptors for (issue 20, items 1 and 2).

Each attack runs against a real bus (in the test's engine, or in a process of its own when
the attack exhausts a process limit); the engine must stay up and keep answering.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from engine.bus.limits import BusLimits
from engine.bus.queues import Mailbox
from tests.adversarial.support import Raw, bus_process, hello, open_fds
from tests.support import running

if TYPE_CHECKING:
    from pathlib import Path

    from engine.bus.queues import Entry

IDLE = """
[[session]]
name = "a"
command = "sleep 30"
"""


class _Counted:
    """A consumer that counts how often it is compared: list removal compares with every
    element before the one it removes (quadratic for many), a keyed set almost never."""

    comparisons = 0
    ack_window = False

    def __init__(self) -> None:
        self.session, self.credit = "a", 1

    def deliver(self, entry: Entry) -> None:
        raise AssertionError("nothing is published")

    def __eq__(self, other: object) -> bool:
        _Counted.comparisons += 1
        return self is other

    __hash__ = object.__hash__


def test_waiters_leave_a_mailbox_without_scanning_the_others() -> None:
    box = Mailbox("queue:jobs")
    waiters = [_Counted() for _ in range(5000)]
    for waiter in waiters:
        box.add_consumer(waiter)
    _Counted.comparisons = 0
    for waiter in reversed(waiters):  # the order a disconnect cancels them in is arbitrary
        box.remove_consumer(waiter)
    assert not box.consumers
    assert _Counted.comparisons < len(waiters), _Counted.comparisons  # list: ~12.5 million


@pytest.mark.anyio
async def test_pops_past_the_pending_cap_are_refused_and_a_disconnect_leaves_the_bus_up(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, IDLE) as engine:
        engine.bus.limits = dataclasses.replace(BusLimits(), pending=500)
        path, token = str(engine.bus.socket_path), engine.bus.token_for("a")

        def attack() -> tuple[list[Any], dict[str, Any]]:
            flood = hello(path, "a", token)
            flood.send(*({"op": "queue.pop", "req": i, "queue": "jobs"} for i in range(3000)))
            refusals = [flood.read() for _ in range(2500)]
            flood.close()  # 500 waiters cancelled at once
            probe = hello(path, "a", token)
            pong = probe.call("ping")
            probe.close()
            return refusals, pong

        refusals, pong = await anyio.to_thread.run_sync(attack)
        codes = {r["error"]["code"] for r in refusals}
        assert codes == {"limit-exceeded"}
        assert "at most 500 requests" in str(refusals[0])
        assert pong["ok"]
        await anyio.sleep(0.2)
        assert engine.bus.mailbox("queue:jobs").consumers == {}


@pytest.mark.anyio
async def test_a_connection_that_never_says_hello_is_closed_with_a_reason(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, IDLE) as engine:
        engine.bus.limits = dataclasses.replace(BusLimits(), hello_timeout=0.2)
        path = str(engine.bus.socket_path)

        def idle() -> list[dict[str, object] | None]:
            client = Raw(path)
            frames = [client.read(), client.read()]
            client.close()
            return frames

        frames = await anyio.to_thread.run_sync(idle)
        assert frames[0] is not None
        assert frames[0]["error"]["code"] == "not-authenticated"  # type: ignore[index]
        assert "no hello within 0.2 s" in frames[0]["error"]["message"]  # type: ignore[index]
        assert frames[1] is None  # then closed
        assert engine.bus.gate.open == 0


@pytest.mark.anyio
async def test_connections_past_the_caps_are_turned_away_and_the_bus_keeps_serving(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, IDLE) as engine:
        engine.bus.limits = dataclasses.replace(BusLimits(), connections=8, unauthenticated=4)
        path, token = str(engine.bus.socket_path), engine.bus.token_for("a")

        def attack() -> tuple[list[str], list[str], bool]:
            idle = [Raw(path) for _ in range(4)]
            over = Raw(path)
            waiting = [str(over.read())]
            over.close()
            for client in idle:
                client.close()
            while engine.bus.gate.open:  # the bus has seen them go
                time.sleep(0.01)
            members = [hello(path, "a", token) for _ in range(8)]
            full = Raw(path)
            too_many = [str(full.read())]
            full.close()
            for client in members[1:]:
                client.close()
            ok = bool(members[0].call("ping")["ok"])
            members[0].close()
            return waiting, too_many, ok

        waiting, too_many, ok = await anyio.to_thread.run_sync(attack)
        assert "limit-exceeded" in waiting[0]
        assert "waiting for their hello (4)" in waiting[0]
        assert "limit-exceeded" in too_many[0]
        assert "too many connections (8 open)" in too_many[0]
        assert ok
        assert engine.bus.gate.refused == 2


def test_running_out_of_descriptors_while_accepting_does_not_end_the_bus(
    tmp_path: Path,
) -> None:
    # caps far above the descriptor limit: only the accept loop stands between the flood
    # and EMFILE killing the process
    limits: dict[str, float] = {"connections": 100_000, "unauthenticated": 100_000}
    with bus_process(tmp_path / "run", limits, nofile=64) as bus:
        flood: list[socket.socket] = []
        try:
            _flood(bus.socket, flood)
            assert len(flood) > 64  # more than the bus can accept
            deadline = time.monotonic() + 20
            while open_fds(bus.pid) < 60 and os.path.exists(bus.socket):  # accepts to the limit
                assert time.monotonic() < deadline, open_fds(bus.pid)
                time.sleep(0.02)
            time.sleep(0.2)  # and meets EMFILE, again and again
        finally:
            for s in flood:
                s.close()
        client = bus.client("a")  # accepted again once descriptors are free
        assert client.call("ping")["ok"]
        client.close()
        assert bus.alive


def _flood(path: str, flood: list[socket.socket]) -> None:
    for _ in range(150):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(path)
        except BlockingIOError:  # the backlog is full: the bus stopped accepting
            s.close()
            break
        flood.append(s)
