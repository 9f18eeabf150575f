"""Kill -9 the engine mid-traffic, restart it on the same run: nothing acknowledged is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

import anyio
import pytest

from engine.bus.broker import MessageBus
from engine.bus.bus_client import BusClient
from engine.bus.bus_errors import BusError, BusTimeoutError
from engine.bus.journal import Journal
from engine.bus.router import queue
from engine.events import BusMessageRedelivered

if TYPE_CHECKING:
    from pathlib import Path

    from engine.events import Event

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGINE = """
import json, sys, anyio
from pathlib import Path
from engine.engine import open_engine
from engine.deck.spec import parse_deck

deck = parse_deck(
    '[pool]\\nsize = 1\\nwarm = 0\\n'
    '[[session]]\\nname = "producer"\\ncommand = "true"\\n'
    '[[session]]\\nname = "consumer"\\ncommand = "true"\\n',
    Path(sys.argv[1]) / "deck.toml",
)

async def main() -> None:
    async with open_engine(deck, Path(sys.argv[1]) / "run") as engine:
        creds = {n: {**engine.session_env(n), "SWARMDECK_SESSION": n} for n in engine.sessions}
        print(json.dumps(creds), flush=True)
        await anyio.sleep_forever()

anyio.run(main)
"""


def start_engine(tmp_path: Path) -> tuple[subprocess.Popen[str], dict[str, BusClient]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", ENGINE, str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    creds = json.loads(proc.stdout.readline())
    clients = {
        name: BusClient(env["SWARMDECK_BUS"], name, env["SWARMDECK_BUS_TOKEN"])
        for name, env in creds.items()
    }
    return proc, clients


def publish_until_killed(bus: BusClient, acked: list[str], stop: threading.Event) -> None:
    n = 0
    try:
        while not stop.is_set():
            acked.append(bus.push("jobs", {"n": n}, reliable=True))
            if n % 10 == 0:
                acked.append(bus.send("consumer", {"n": n}, reliable=True))
            n += 1
    except (BusError, OSError, ValueError):
        return  # the engine died under us: everything in `acked` was acknowledged


@pytest.mark.slow
def test_every_acknowledged_reliable_message_survives_kill_9(tmp_path: Path) -> None:
    proc, clients = start_engine(tmp_path)
    acked: list[str] = []
    stop = threading.Event()
    try:
        consumer = clients["consumer"]
        consumer.push("jobs", "warm-up", reliable=True)  # the consumer may push too
        done = {consumer.pop("jobs", wait=1, ack=True)["id"]}
        producer = threading.Thread(
            target=publish_until_killed, args=(clients["producer"], acked, stop)
        )
        producer.start()
        while len(acked) < 50:
            time.sleep(0.005)
        for _ in range(20):
            done.add(consumer.pop("jobs", wait=1, ack=True)["id"])
        in_flight = {consumer.pop("jobs", wait=1)["id"] for _ in range(5)}  # never acked
        while len(acked) < 600:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)  # mid-traffic: the producer is still publishing
        proc.wait(10)
        producer.join(10)
        assert len(acked) >= 600
    finally:
        stop.set()
        for client in clients.values():
            client.close()
        proc.kill()
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()

    proc, clients = start_engine(tmp_path)
    try:
        consumer = clients["consumer"]
        stats = consumer.call("stats")["stats"]
        assert stats["redeliveries"] >= len(set(acked) - done)  # every one owed, counted
        again: list[str] = []
        for mode in ("pop", "recv"):
            while True:
                try:
                    take = consumer.pop("jobs", wait=0.3, ack=True) if mode == "pop" else (
                        consumer.recv(wait=0.3, ack=True))  # fmt: skip
                except BusTimeoutError:
                    break
                again.append(take["id"])
        owed = set(acked) - done
        assert owed <= set(again), f"lost {len(owed - set(again))} acknowledged messages"
        assert in_flight <= set(again)
        assert not done & set(again), "messages acked by their receiver came back"
        assert len(again) == len(set(again))
    finally:
        for client in clients.values():
            client.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()


@pytest.mark.anyio
async def test_a_restart_reports_each_journalled_message_as_redelivered(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "bus.db")
    bus = MessageBus(["a", "b"], lambda event: None, journal, ack_timeout=0.01)
    for n in range(3):
        bus.send("queue", "jobs", "a", n, reliable=True)
    first = await bus.take("b", bus.consumable("b", "queue", "jobs"), 1.0, False)
    await anyio.sleep(0.05)
    bus.sweep()  # its ack timeout passed: attempt 1 is journalled
    journal.close()

    events: list[Event] = []
    reopened = Journal(tmp_path / "bus.db")
    again = MessageBus(["a", "b"], events.append, reopened)
    redelivered = [e for e in events if isinstance(e, BusMessageRedelivered)]
    assert [(e.attempt, e.reason) for e in redelivered] == [(2, "restart"), (1, "restart"),
                                                            (1, "restart")]  # fmt: skip
    assert again.redeliveries == again.mailbox(queue("jobs")).redelivered == 3
    box = again.consumable("b", "queue", "jobs")
    entry = await again.take("b", box, 1.0, True)
    assert (entry.message.id, entry.attempt) == (first.message.id, 2)
    assert again.statistics().redeliveries == 3
    reopened.close()
