"""Attacks on the bus's memory (issue 20, item 4): subscribers that never read, huge
windows, endless subscriptions. Each is bounded by `BusLimits`; the bus's RSS must stay
under a stated bound while the flood goes on, and the bus keeps serving."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import anyio
import pytest

from engine.bus.limits import BusLimits
from tests.adversarial.support import bus_process, hello, rss_mb
from tests.support import running

if TYPE_CHECKING:
    from pathlib import Path

PAYLOAD = "y" * 64_000
MESSAGES = 1500  # ~96 MB of deliveries for a subscriber that never reads
GROWTH_MB = 48  # outbox (4 MiB here) + socket buffers + allocator slack


def test_a_subscriber_that_never_reads_costs_the_outbox_bound_not_the_traffic(
    tmp_path: Path,
) -> None:
    with bus_process(tmp_path / "run", {"outbox": 4 << 20}) as bus:
        sleeper = bus.client("b")
        assert sleeper.call("subscribe", pattern="t", window=4096)["ok"]
        publisher = bus.client("a")
        before = rss_mb(bus.pid)
        publisher.send(*({"op": "publish", "topic": "t", "payload": PAYLOAD, "quiet": True}
                         for _ in range(MESSAGES)))  # fmt: skip
        assert publisher.call("ping")["ok"]  # every publish handled before this reply
        grown = rss_mb(bus.pid) - before
        assert grown < GROWTH_MB, f"{grown:.0f} MB"
        delivered = dropped = 0
        while delivered + dropped < MESSAGES:
            frame = sleeper.read()
            assert frame is not None
            delivered += "msg" in frame
            dropped += int(frame.get("dropped", 0))
        assert dropped > 0  # announced, and counted by the bus
        assert sleeper.call("ping")["ok"]
        assert publisher.call("stats")["stats"]["drops"] >= dropped
        publisher.close()
        sleeper.close()
        assert bus.alive


IDLE = """
[[session]]
name = "a"
command = "sleep 30"
"""


@pytest.mark.anyio
async def test_huge_windows_and_endless_subscriptions_are_refused_clearly(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, IDLE) as engine:
        engine.bus.limits = dataclasses.replace(BusLimits(), subscriptions=5)
        path, token = str(engine.bus.socket_path), engine.bus.token_for("a")

        def attack() -> tuple[dict[str, object], list[dict[str, object]]]:
            client = hello(path, "a", token)
            huge = client.call("subscribe", pattern="t", window=1_000_000_000)
            subs = [client.call("subscribe", pattern=f"t{i}") for i in range(6)]
            client.close()
            return huge, subs

        huge, subs = await anyio.to_thread.run_sync(attack)
        assert huge["error"] == {
            "code": "limit-exceeded",
            "message": "window must be at most 4096, got 1000000000",
        }
        assert [s["ok"] for s in subs] == [True] * 5 + [False]
        assert "at most 5 subscriptions per connection" in str(subs[5])
