"""Attacks on the bus's durability and its queue limits (issue 20, item 3): a journal that
cannot be written (file size limit reached: what a full disk does to SQLite) must cost the
sender an error frame, never the engine; what was acknowledged before survives."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from tests.adversarial.support import bus_process, hello
from tests.support import running

if TYPE_CHECKING:
    from pathlib import Path

PAYLOAD = "x" * 100_000


def test_a_journal_that_cannot_grow_refuses_the_message_and_keeps_the_bus_up(
    tmp_path: Path,
) -> None:
    run = tmp_path / "run"
    acked: list[str] = []
    with bus_process(run, fsize=1 << 20) as bus:  # 1 MiB: the WAL cannot grow past it
        sender = bus.client("a")
        refusal = None
        for _ in range(40):
            reply = sender.call("send", to="b", payload=PAYLOAD, reliable=True)
            if not reply["ok"]:
                refusal = reply
                break
            acked.append(reply["id"])
        assert refusal is not None, "the journal never filled"
        assert refusal["error"]["code"] == "journal-failed"
        assert "not acknowledged" in refusal["error"]["message"]
        assert sender.call("ping")["ok"]  # the same connection goes on
        sender.close()
        assert bus.alive
    with bus_process(run) as bus:  # restarted on the same run, room again
        receiver = bus.client("b")
        got = []
        while (reply := receiver.call("recv", wait=0.5, ack=True))["ok"]:
            got.append(reply["message"]["id"])
        receiver.close()
    assert set(acked) <= set(got)  # nothing acknowledged was lost
    assert acked


IDLE = """
[[session]]
name = "a"
command = "sleep 30"
"""


@pytest.mark.anyio
@pytest.mark.parametrize("capacity", [10**12, -1, 0, 2.5, True])
async def test_a_queue_capacity_out_of_range_is_refused_clearly(
    tmp_path: Path, capacity: object
) -> None:
    async with running(tmp_path, IDLE) as engine:
        path, token = str(engine.bus.socket_path), engine.bus.token_for("a")

        def declare() -> dict[str, object]:
            client = hello(path, "a", token)
            reply = client.call("queue.declare", queue="jobs", capacity=capacity)
            push = client.call("queue.push", queue="jobs", payload=1, reliable=True)
            client.close()
            assert push["ok"], push  # the queue still works
            return reply

        reply = await anyio.to_thread.run_sync(declare)
        assert reply["ok"] is False
        assert reply["error"]["code"] == "bad-frame"  # type: ignore[index]
        message = reply["error"]["message"]  # type: ignore[index]
        assert "capacity" in message
        assert engine.bus.mailbox("queue:jobs").capacity == 10_000
