"""Per-replica work queues and stealing: real replicas popping with `swarmdeck bus` over the
real bus socket, the operator pushing skewed work (docs/bus.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
import pytest
from textual.widgets import Static

from engine.bus.broker import MessageBus
from engine.bus.bus_client import AsyncBusClient
from engine.bus.bus_errors import BusError
from engine.bus.journal import Journal
from engine.bus.message import OPERATOR
from engine.deck.spec import parse_deck
from engine.engine import open_engine
from engine.errors import DeckError
from engine.events import BusMessageRedelivered
from engine.states import SessionState as S
from tests.cli_support import served
from tests.support import ROOT, make_deck, running, wait_state
from tests.tui_support import open_room, until
from tui.cli.figures import balance_lines

if TYPE_CHECKING:
    from pathlib import Path

    from engine.bus.queues import Entry
    from engine.engine import Engine
    from engine.events import Event

pytestmark = pytest.mark.anyio
CLI = f"PYTHONPATH={ROOT} {sys.executable} -m tui.cli bus"
POOL = "size = 3\nwarm = 3"


def _workers(tmp_path: Path, steal: bool, pause: float = 0.2) -> str:
    """Three replicas popping `tasks` until it stays empty for 3 s; each task is a line
    appended to done.txt (payload, replica), then `pause` seconds of work."""
    loop = (
        f"while {CLI} queue pop tasks -p --wait 3 > t.$SWARMDECK_REPLICA; do "
        f'echo "$(cat t.$SWARMDECK_REPLICA) $SWARMDECK_REPLICA" >> done.txt; sleep {pause}; done'
    )
    return f"""
[[session]]
name = "w"
replicas = 3
queue = {{ name = "tasks", steal = {str(steal).lower()} }}
command = '{loop}'
cwd = "{tmp_path}"
"""


async def _all_waiting(engine: Engine, shards: int, timeout: float = 30) -> None:
    """Until every replica is blocked in its pop (attached to its shard)."""
    with anyio.fail_after(timeout):
        while not all(
            engine.bus.mailbox(f"queue:tasks.{i}").consumers for i in range(1, shards + 1)
        ):
            await anyio.sleep(0.02)


async def _skewed_run(tmp_path: Path, steal: bool) -> tuple[Engine, list[str]]:
    """12 reliable tasks, every one pre-assigned to replica 1's shard."""
    async with running(tmp_path, _workers(tmp_path, steal), POOL) as engine:
        await _all_waiting(engine, 3)
        for task in range(1, 13):
            engine.bus_push("tasks.1", task, reliable=True)
        with anyio.fail_after(90):
            assert await engine.wait_finished()
        done = (tmp_path / "done.txt").read_text().split("\n")
    return engine, [line for line in done if line]


async def test_an_idle_replica_steals_from_the_busiest_shard_so_skewed_work_evens_out(
    tmp_path: Path,
) -> None:
    _, done = await _skewed_run(tmp_path, steal=True)
    by_replica = {r: sum(line.endswith(f" {r}") for line in done) for r in "123"}
    assert all(count >= 2 for count in by_replica.values()), by_replica
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    (balance,) = summary["balance"]
    completed = {w["session"]: w["completed"] for w in balance["workers"]}
    assert completed == {f"w#{r}": n for r, n in by_replica.items()}
    assert balance["completed"] == 12
    assert balance["stolen"] == by_replica["2"] + by_replica["3"]
    assert balance["tasks_min"] == min(by_replica.values())
    assert balance["tasks_max"] == max(by_replica.values())


async def test_without_stealing_the_owner_of_the_skewed_shard_does_all_the_work(
    tmp_path: Path,
) -> None:
    """The control: the same run with `steal = false` leaves replicas 2 and 3 idle."""
    engine, done = await _skewed_run(tmp_path, steal=False)
    assert len(done) == 12
    assert all(line.endswith(" 1") for line in done)
    (balance,) = engine.bus_statistics().balance
    assert (balance.stolen, balance.tasks_max, balance.tasks_min) == (0, 12, 0)
    (line,) = balance_lines([balance])
    assert line.startswith("balance: queue tasks, 12 tasks done by 3 workers (min 0, max 12,")
    assert line.endswith("0 stolen (stealing off): w#1 12, w#2 0, w#3 0")


async def test_an_acked_stolen_task_is_delivered_once_and_leaves_no_journal_row(
    tmp_path: Path,
) -> None:
    engine, done = await _skewed_run(tmp_path, steal=True)
    assert sorted(int(line.split()[0]) for line in done) == list(range(1, 13))
    stats = engine.bus_statistics()
    assert (stats.redeliveries, stats.in_flight, stats.acked) == (0, 0, 12)
    assert stats.balance[0].stolen > 0
    # a restart on the same run owes nothing: every stolen task's ack removed its row
    deck = make_deck(tmp_path, _workers(tmp_path, steal=True), POOL)
    async with open_engine(deck, tmp_path / "run") as again:
        after = again.bus_statistics()
        assert after.redeliveries == 0
        assert all(len(again.bus.mailbox(f"queue:tasks.{i}")) == 0 for i in (1, 2, 3))


async def test_a_killed_replica_s_stolen_unacked_task_is_delivered_again(tmp_path: Path) -> None:
    """w#2 steals the task waiting in busy w#1's shard, takes it without acking and is
    killed: the task goes back to w#1's shard at once (not at its 30 s ack timeout)."""
    steal_and_die = f"{CLI} queue pop tasks --no-ack -p > got; kill -9 $$"
    body = f"""
[[session]]
name = "w"
replicas = 2
queue = "tasks"
command = 'if [ $SWARMDECK_REPLICA = 2 ]; then {steal_and_die}; fi; sleep 60'
cwd = "{tmp_path}"
"""
    async with running(tmp_path, body, POOL) as engine:
        redelivered: list[BusMessageRedelivered] = []

        def seen(event: Event) -> None:
            if isinstance(event, BusMessageRedelivered):
                redelivered.append(event)

        engine.hub.listen(seen)
        await _all_waiting_on(engine, "queue:tasks.2")
        engine.bus_push("tasks.1", {"job": 7}, reliable=True)
        await wait_state(engine, "w#2", S.FAILED, timeout=30)
        assert (tmp_path / "got").read_text().strip() == '{"job": 7}'
        with anyio.fail_after(10):
            while not redelivered:
                await anyio.sleep(0.02)
        assert (redelivered[0].mailbox, redelivered[0].reason) == (
            "queue:tasks.1",
            "consumer-ended",
        )
        (balance,) = engine.bus_statistics().balance
        assert (balance.stolen, balance.completed) == (1, 0)
        client = await _client(engine, "w#1")
        try:
            with anyio.fail_after(10):
                message = await client.pop("tasks", wait=5)
            assert (message["payload"], message["attempt"]) == ({"job": 7}, 2)
            await client.ack(message["id"])
        finally:
            await client.aclose()
        (balance,) = engine.bus_statistics().balance
        assert {w.session: w.completed for w in balance.workers} == {"w#1": 1, "w#2": 0}
        assert engine.bus_statistics().in_flight == 0


async def test_a_session_without_a_shard_is_told_to_pop_one_by_name(tmp_path: Path) -> None:
    body = """
[[session]]
name = "w"
replicas = 2
queue = "tasks"
command = "sleep 30"

[[session]]
name = "boss"
command = "sleep 30"
"""
    async with running(tmp_path, body, POOL) as engine:
        engine.bus_push("tasks", 1, reliable=True)
        engine.bus_push("tasks", 2, reliable=True)
        assert [len(engine.bus.mailbox(f"queue:tasks.{i}")) for i in (1, 2)] == [1, 1]
        client = await _client(engine, "boss")
        try:
            with pytest.raises(BusError, match=r"'boss' has none: pop a shard by name"):
                await client.pop("tasks", wait=1)
            message = await client.pop("tasks.2", wait=5, ack=True)
            assert message["payload"] == 2
        finally:
            await client.aclose()


def test_a_work_queue_is_checked_in_the_deck(tmp_path: Path) -> None:
    bad = """
[[session]]
name = "a"
command = "true"
queue = "tasks.3"

[[session]]
name = "b"
command = "true"
queue = { name = "jobs" }

[[session]]
name = "c"
command = "true"
queue = { name = "jobs", steal = "yes" }
"""
    with pytest.raises(DeckError) as caught:
        parse_deck(bad, tmp_path / "deck.toml")
    text = str(caught.value)
    assert "session[1] (a).queue.name: expected a bus queue name" in text
    assert "work queue 'jobs' is declared twice (session[2] and session[3])" in text
    assert "session[3] (c).queue.steal: expected true or false" in text


async def _all_waiting_on(engine: Engine, mailbox: str, timeout: float = 30) -> None:
    with anyio.fail_after(timeout):
        while not engine.bus.mailbox(mailbox).consumers:
            await anyio.sleep(0.02)


async def _client(engine: Engine, session: str) -> AsyncBusClient:
    path = engine.bus.socket_path
    assert path is not None
    return await AsyncBusClient.connect(str(path), session, engine.bus.token_for(session))


# -- the broker's rules, in-process (a real MessageBus and journal, no sessions) ------------


def _sharded_bus(tmp_path: Path, owners: int = 3) -> tuple[MessageBus, Journal]:
    journal = Journal(tmp_path / "bus.sqlite")
    sessions = [f"w#{i}" for i in range(1, owners + 1)]
    bus = MessageBus(sessions, lambda event: None, journal)
    bus.shard("tasks", sessions)
    return bus, journal


async def _pop(bus: MessageBus, session: str, ack: bool = False) -> Entry:
    box = bus.consumable(session, "queue", "tasks")
    return await bus.take(session, box, 5.0, ack)


async def _attached(bus: MessageBus, mailbox: str) -> None:
    with anyio.fail_after(10):
        while not bus.mailbox(mailbox).consumers:
            await anyio.lowlevel.checkpoint()


async def test_a_stolen_task_given_back_by_a_cancelled_pop_returns_to_its_own_shard(
    tmp_path: Path,
) -> None:
    """Its journal row is the victim shard's: put anywhere else, its ack would leave the
    row behind and a restart would deliver an acked task again."""
    bus, journal = _sharded_bus(tmp_path, owners=2)
    async with anyio.create_task_group() as tg:
        tg.start_soon(_pop, bus, "w#2")
        await _attached(bus, "queue:tasks.2")
        tg.cancel_scope.cancel()  # w#2's pop is being cancelled...
        bus.send("queue", "tasks.1", OPERATOR, "job", reliable=True)  # ...as it steals this
    bus.commit()
    assert [len(bus.mailbox(f"queue:tasks.{i}")) for i in (1, 2)] == [1, 0]
    entry = await _pop(bus, "w#1", ack=True)
    bus.commit()
    assert (entry.message.payload, entry.attempt) == ("job", 1)
    assert list(journal.rows()) == []
    journal.close()


async def test_a_nacked_stolen_task_goes_back_to_its_shard_and_an_idle_replica_steals_it(
    tmp_path: Path,
) -> None:
    bus, journal = _sharded_bus(tmp_path)
    bus.send("queue", "tasks.1", OPERATOR, "job", reliable=True)
    stolen = await _pop(bus, "w#2")
    async with anyio.create_task_group() as tg:
        got: list[Entry] = []

        async def third() -> None:
            got.append(await _pop(bus, "w#3", ack=True))

        tg.start_soon(third)
        await _attached(bus, "queue:tasks.3")
        bus.nack("w#2", stolen.message.id)
    assert (got[0].message.id, got[0].attempt) == (stolen.message.id, 2)
    (balance,) = bus.statistics().balance
    assert {w.session: (w.completed, w.stolen) for w in balance.workers} == {
        "w#1": (0, 0), "w#2": (0, 1), "w#3": (1, 1),
    }  # fmt: skip
    assert (balance.completed, balance.stolen, bus.statistics().redeliveries) == (1, 2, 1)
    bus.commit()
    assert list(journal.rows()) == []
    journal.close()


async def test_a_push_to_the_queue_name_deals_the_shards_in_turn_and_declare_reaches_all(
    tmp_path: Path,
) -> None:
    bus, journal = _sharded_bus(tmp_path)
    for task in range(6):
        bus.send("queue", "tasks", OPERATOR, task)
    assert [len(bus.mailbox(f"queue:tasks.{i}")) for i in (1, 2, 3)] == [2, 2, 2]
    bus.declare(OPERATOR, "queue", "tasks", ack_timeout=2.0, max_attempts=3)
    shards = [bus.mailbox(f"queue:tasks.{i}") for i in (1, 2, 3)]
    assert {(b.ack_timeout, b.max_attempts) for b in shards} == {(2.0, 3)}
    assert (await _pop(bus, "w#2")).message.payload == 1  # its own shard first
    bus.commit()
    again = MessageBus(["w#1", "w#2", "w#3"], lambda event: None, journal)  # a restart
    again.shard("tasks", ["w#1", "w#2", "w#3"])
    shards = [again.mailbox(f"queue:tasks.{i}") for i in (1, 2, 3)]
    assert {(b.ack_timeout, b.max_attempts) for b in shards} == {(2.0, 3)}
    assert "queue:tasks" not in again.mailboxes
    journal.close()


def test_a_headless_run_ends_with_the_balance_of_each_work_queue(tmp_path: Path) -> None:
    deck = tmp_path / "deck.toml"
    deck.write_text(f"""
[pool]
size = 3

[[session]]
name = "boss"
command = 'for i in 1 2 3 4 5 6; do {CLI} queue push tasks $i --reliable; done'

[[session]]
name = "w"
replicas = 2
queue = "tasks"
command = 'while {CLI} queue pop tasks -p --wait 3; do :; done'
""")
    out = subprocess.run(
        [sys.executable, "-m", "tui.cli", "run", "--headless", str(deck), "--run-dir",
         str(tmp_path / "run")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    (line,) = [ln for ln in out.stdout.splitlines() if ln.startswith("balance:")]
    assert line.startswith("balance: queue tasks, 6 tasks done by 2 workers"), line
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["balance"][0]["completed"] == 6


def test_attach_headless_shows_the_balance_of_a_served_run(tmp_path: Path) -> None:
    deck = f"""
[pool]
size = 3

[[session]]
name = "boss"
command = 'for i in 1 2 3 4; do {CLI} queue push tasks $i --reliable; done; sleep 60'

[[session]]
name = "w"
replicas = 2
queue = "tasks"
command = 'while {CLI} queue pop tasks -p; do :; done'
"""
    with served(deck, tmp_path) as svc:

        def shown() -> bool:
            out = svc.cli("attach", "svc", "--headless").stdout
            return "balance: queue tasks, 4 tasks done by 2 workers" in out

        svc.until(shown, tries=100)


async def test_the_room_shows_the_balance_in_the_pool_panel_only_for_a_deck_with_a_queue(
    tmp_path: Path,
) -> None:
    body = f"""
[[session]]
name = "w"
replicas = 2
queue = "tasks"
command = 'while {CLI} queue pop tasks -p; do :; done'
"""
    async with open_room(tmp_path, body) as (engine, app, pilot):
        await _all_waiting(engine, 2)
        for task in range(3):
            engine.bus_push("tasks.1", task, reliable=True)
        balance = app.query_one("#pool-balance", Static)
        await until(pilot, lambda: "queue tasks: 3 done" in str(balance.render()), timeout=30)
        assert balance.display
        assert "w#1 " in str(balance.render())
    (tmp_path / "plain").mkdir()
    plain = '[[session]]\nname = "s"\ncommand = "sleep 5"\n'
    async with open_room(tmp_path / "plain", plain) as (_, app, pilot):
        summary = app.query_one("#contention-summary", Static)
        await until(pilot, lambda: "max_parallel" in str(summary.render()), timeout=30)
        assert not app.query_one("#pool-balance", Static).display
