"""The bus on NATS (`bus = "nats://…"`): the embedded bus's semantics hold through a real
`nats-server -js`, and sessions of two engines (two decks) talk through it.

The semantics tests run on both backends ("embedded", "nats"), driven as sessions drive the
bus: the socket protocol with a session's token (engine.bus.bus_client) or the CLI.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from engine.bus.bus_client import AsyncBusClient
from engine.bus.bus_errors import BusTimeoutError, NatsLinkError, UnknownTargetError
from engine.bus.message import OPERATOR, Message
from engine.engine import open_engine
from engine.errors import DeckError
from tests.support import BUS_CLI, ROOT, make_deck, wait_state, wait_text

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from engine.deck.spec import DeckSpec
    from engine.engine import Engine

pytestmark = pytest.mark.anyio
CLI = BUS_CLI
IDLE = """
[[session]]
name = "{a}"
command = "sleep 60"

[[session]]
name = "{b}"
command = "sleep 60"
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def nats_server(store: Path, port: int, *, jetstream: bool = True) -> Iterator[str]:
    """A real nats-server on loopback, listening when this yields; stopped on exit."""
    binary = shutil.which("nats-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("nats-server is missing: scripts/check installs it (apt nats-server)")
        pytest.skip("nats-server is not installed (apt-get install nats-server)")
    env = {k: v for k, v in os.environ.items() if k != "SWARMDECK_TEST_TOKEN"}  # not a leak
    args = [binary, "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)]
    log = open(store / "nats.log", "ab")  # noqa: SIM115 (closed below, after the server)
    server = subprocess.Popen([*args, *(["-js"] if jetstream else [])], stdout=log,
                              stderr=subprocess.STDOUT, env=env)  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            assert server.poll() is None, (store / "nats.log").read_text()
            assert time.monotonic() < deadline, "nats-server did not listen within 20 s"
            time.sleep(0.05)
        yield f"nats://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)
        log.close()


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One `nats-server -js` for this module (each test takes its own namespace)."""
    with nats_server(tmp_path_factory.mktemp("nats"), _free_port()) as url:
        yield url


@pytest.fixture(params=["embedded", "nats"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _bus_line(url: str | None) -> str:
    """A fresh namespace per test: tests sharing the module's server never meet."""
    return "" if url is None else f'bus = "{url}/t{uuid.uuid4().hex[:10]}"'


def _deck(directory: Path, body: str, pool: str, bus_line: str) -> DeckSpec:
    directory.mkdir(exist_ok=True)
    return make_deck(directory, body, pool, top=bus_line)


@asynccontextmanager
async def engine_on(
    directory: Path, body: str, bus_line: str, pool: str = "size = 2\nwarm = 1"
) -> AsyncIterator[Engine]:
    deck = _deck(directory, body, pool, bus_line)
    async with open_engine(deck, directory / "run") as engine:
        await engine.start_all()
        yield engine


@asynccontextmanager
async def as_session(engine: Engine, name: str) -> AsyncIterator[AsyncBusClient]:
    """The bus as session `name` reaches it: its engine's socket, its token."""
    path = str(engine.bus.socket_path)
    client = await AsyncBusClient.connect(path, name, engine.bus.token_for(name))
    try:
        yield client
    finally:
        await client.aclose()


@asynccontextmanager
async def one_engine(tmp_path: Path, backend: str, url: str) -> AsyncIterator[Engine]:
    line = _bus_line(url if backend == "nats" else None)
    async with engine_on(tmp_path / "one", IDLE.format(a="a", b="b"), line) as engine:
        yield engine


def sent_to_nats(engine: Engine, backend: str) -> int:
    """Messages the engine published to NATS (its outbox acked them); 0 when embedded."""
    boxes = {m.name: m for m in engine.bus_statistics().mailboxes}
    assert ("link:nats" in boxes) == (backend == "nats")
    return boxes["link:nats"].acked if backend == "nats" else 0


async def _until(check: Any, timeout: float = 20) -> None:
    with anyio.fail_after(timeout):
        while not check():
            await anyio.sleep(0.02)


# -- the same semantics on both backends ------------------------------------------------------


async def test_a_subscriber_gets_what_another_session_publishes(
    tmp_path: Path, backend: str, nats_url: str
) -> None:
    async with one_engine(tmp_path, backend, nats_url) as engine:
        async with as_session(engine, "a") as a, as_session(engine, "b") as b:
            await a.subscribe("build.>")
            await b.publish("build.linux.done", {"ok": True}, reliable=True)
            with anyio.fail_after(20):
                got = await a.messages.get()
            await a.ack(got["id"])
        assert (got["sender"], got["topic"], got["payload"]) == (
            "b",
            "build.linux.done",
            {"ok": True},
        )
        await _until(lambda: engine.bus_statistics().in_flight == 0)


async def test_a_direct_message_reaches_its_session_only(
    tmp_path: Path, backend: str, nats_url: str
) -> None:
    async with one_engine(tmp_path, backend, nats_url) as engine:
        async with as_session(engine, "a") as a, as_session(engine, "b") as b:
            await a.send("b", "for b", reliable=True)
            got = await b.recv(wait=20, ack=True)
            with pytest.raises(BusTimeoutError):
                await a.recv(wait=0.3)
        assert (got["sender"], got["payload"], got["attempt"]) == ("a", "for b", 1)


async def test_a_queue_hands_each_message_once_in_order_and_acks_settle_them(
    tmp_path: Path, backend: str, nats_url: str
) -> None:
    async with one_engine(tmp_path, backend, nats_url) as engine:
        async with as_session(engine, "a") as a, as_session(engine, "b") as b:
            for n in range(3):
                await a.push("jobs", n, reliable=True)
            got = [(await b.pop("jobs", wait=20, ack=True))["payload"] for _ in range(3)]
            with pytest.raises(BusTimeoutError):
                await b.pop("jobs", wait=0.5)
        assert got == [0, 1, 2]
        assert engine.bus_statistics().in_flight == 0
        assert sent_to_nats(engine, backend) == (3 if backend == "nats" else 0)  # JetStream's


async def test_a_message_whose_consumer_died_unacked_goes_to_the_next_consumer(
    tmp_path: Path, backend: str, nats_url: str
) -> None:
    async with one_engine(tmp_path, backend, nats_url) as engine:
        async with as_session(engine, "a") as a:
            await a.call("queue.declare", queue="jobs", ack_timeout=0.3)
            await a.push("jobs", "job", reliable=True)
            async with as_session(engine, "b") as dying:
                first = await dying.pop("jobs", wait=20)  # no ack: it dies holding it
            async with as_session(engine, "b") as next_one:
                again = await next_one.pop("jobs", wait=20, ack=True)
        assert (again["id"], again["attempt"]) == (first["id"], 2)
        assert engine.bus_statistics().redeliveries >= 1


async def test_after_its_last_attempt_a_message_is_a_dead_letter(
    tmp_path: Path, backend: str, nats_url: str
) -> None:
    async with one_engine(tmp_path, backend, nats_url) as engine:
        async with as_session(engine, "a") as a:
            await a.call("queue.declare", queue="jobs", ack_timeout=0.2, max_attempts=1)
            await a.push("jobs", "poison", reliable=True)
            async with as_session(engine, "b") as b:
                await b.pop("jobs", wait=20)
            await _until(lambda: engine.bus_dead_letters())
            letters = (await a.call("dlq.list"))["letters"]
        assert [(d.reason, d.attempts) for d in engine.bus_dead_letters()] == [("max-attempts", 1)]
        assert [d["message"]["payload"] for d in letters] == ["poison"]
        assert sent_to_nats(engine, backend) == (1 if backend == "nats" else 0)


async def test_a_message_past_its_ttl_is_never_delivered_and_a_reliable_one_is_a_dead_letter(
    tmp_path: Path, backend: str, nats_url: str
) -> None:
    async with one_engine(tmp_path, backend, nats_url) as engine:
        async with as_session(engine, "a") as a, as_session(engine, "b") as b:
            await a.push("jobs", "stale", reliable=True, ttl=0.3)
            await anyio.sleep(0.6)
            with pytest.raises(BusTimeoutError):
                await b.pop("jobs", wait=1.5)
            await _until(lambda: engine.bus_dead_letters())
        assert [d.reason for d in engine.bus_dead_letters()] == ["expired"]
        assert engine.bus_statistics().expired == 1


async def test_per_replica_work_queues_stay_on_their_engine(tmp_path: Path, nats_url: str) -> None:
    body = """
[[session]]
name = "w"
replicas = 2
queue = "tasks"
command = "sleep 60"
"""
    async with engine_on(tmp_path / "one", body, _bus_line(nats_url)) as engine:
        for task in (1, 2):
            engine.bus_push("tasks", task, reliable=True)  # dealt to the shards in turn
        engine.bus_push("tasks.2", 3, reliable=True)  # a shard by name
        async with as_session(engine, "w#2") as worker:
            got = [(await worker.pop("tasks", wait=20, ack=True))["payload"] for _ in range(2)]
        assert len(engine.bus.mailbox("queue:tasks.1")) == 1
        assert sorted(got) == [2, 3]
        assert sent_to_nats(engine, "nats") == 0


# -- two engines on one NATS server ----------------------------------------------------------


@asynccontextmanager
async def two_engines(tmp_path: Path, url: str) -> AsyncIterator[tuple[Engine, Engine]]:
    line = _bus_line(url)
    async with (
        engine_on(tmp_path / "a", IDLE.format(a="a1", b="a2"), line) as first,
        engine_on(tmp_path / "b", IDLE.format(a="b1", b="b2"), line) as second,
    ):
        yield first, second


async def test_sessions_of_two_engines_share_topics_direct_messages_and_broadcasts(
    tmp_path: Path, nats_url: str
) -> None:
    async with two_engines(tmp_path, nats_url) as (one, two):
        async with as_session(one, "a1") as a1, as_session(two, "b1") as b1:
            await b1.subscribe("news.*")
            await anyio.sleep(0.2)  # a best-effort topic reaches whoever listens when sent
            await a1.publish("news.eu", "best-effort")
            await a1.publish("news.us", "reliable", reliable=True)
            got = [await b1.messages.get() for _ in range(2)]
            await b1.ack(next(m["id"] for m in got if m["reliability"] == "reliable"))
            await a1.send("b1", "to b1 on the other engine", reliable=True)
            direct = await b1.recv(wait=20, ack=True)
            await b1.broadcast("hello all", reliable=True)
            everyone = await a1.recv(wait=20, ack=True)
        assert sorted(m["payload"] for m in got) == ["best-effort", "reliable"]
        assert {m["sender"] for m in got} == {"a1"}
        assert (direct["sender"], direct["payload"]) == ("a1", "to b1 on the other engine")
        assert (everyone["sender"], everyone["payload"]) == ("b1", "hello all")


async def test_a_request_is_answered_by_a_session_of_the_other_engine(
    tmp_path: Path, nats_url: str
) -> None:
    async with two_engines(tmp_path, nats_url) as (one, two):
        async with as_session(one, "a1") as asker, as_session(two, "b1") as responder:
            await responder.subscribe("sum.*")
            await anyio.sleep(0.2)  # requests are best-effort: to whoever listens when sent

            async def answer() -> None:
                request = await responder.messages.get()
                await responder.reply(request["id"], sum(request["payload"]))

            async with anyio.create_task_group() as tg:
                tg.start_soon(answer)
                reply = await asker.request("sum.all", [1, 2, 3], timeout=20)
        assert (reply["route"], reply["sender"], reply["payload"]) == ("reply", "b1", 6)


async def test_the_engines_own_topics_and_its_sessions_names_are_not_taken_from_nats(
    tmp_path: Path, nats_url: str
) -> None:
    async with two_engines(tmp_path, nats_url) as (one, two):
        one.bus_publish("swarmdeck.alerts", {"alert": "of engine one"}, reliable=True)
        async with as_session(one, "a1") as a1:
            await a1.publish("news.eu", "counted", reliable=True)
        await _until(lambda: sent_to_nats(one, "nats") == 1)  # news.eu only
        with two.bus_subscribe(">") as everything:
            forged = Message("m-forged", "topic", "news.eu", "b2", "I am b2", reliable=True)
            assert two.bus.ingest(forged) == 0
            alert = Message("m-alert", "topic", "swarmdeck.alerts", OPERATOR, {"alert": "x"})
            assert two.bus.ingest(alert) == 0
            assert everything.get_nowait() is None


async def test_a_direct_message_reaches_a_replica_on_the_other_engine(
    tmp_path: Path, nats_url: str
) -> None:
    line = _bus_line(nats_url)
    replicas = '[[session]]\nname = "w"\nreplicas = 2\ncommand = "sleep 60"\n'
    async with (
        engine_on(tmp_path / "a", IDLE.format(a="a1", b="a2"), line) as one,
        engine_on(tmp_path / "b", replicas, line) as two,
        as_session(one, "a1") as a1,
        as_session(two, "w#2") as w2,
    ):
        await a1.send("w#2", "for the second replica", reliable=True)
        got = await w2.recv(wait=20, ack=True)
        with pytest.raises(UnknownTargetError, match="no deck can name one so"):
            await a1.send("no such/name", 1)
    assert (got["sender"], got["payload"]) == ("a1", "for the second replica")


async def test_consumers_on_two_engines_compete_for_one_queue_without_duplicates(
    tmp_path: Path, nats_url: str
) -> None:
    async with two_engines(tmp_path, nats_url) as (one, two):
        async with (
            as_session(one, "a1") as producer,
            as_session(one, "a2") as here,
            as_session(two, "b1") as there,
        ):
            for n in range(20):
                await producer.push("work", n, reliable=True)
            got: dict[str, list[int]] = {
                "there": [(await there.pop("work", wait=20, ack=True))["payload"]],
                "here": [(await here.pop("work", wait=20, ack=True))["payload"]],
            }  # one each, then both at once

            async def work(name: str, client: AsyncBusClient) -> None:
                with contextlib.suppress(BusTimeoutError):
                    while True:
                        got[name].append((await client.pop("work", wait=3, ack=True))["payload"])

            async with anyio.create_task_group() as tg:
                tg.start_soon(work, "here", here)
                tg.start_soon(work, "there", there)
        assert sorted(got["here"] + got["there"]) == list(range(20))
        assert one.bus_statistics().in_flight == two.bus_statistics().in_flight == 0


async def test_a_queue_message_whose_consumer_died_goes_to_a_consumer_on_the_other_engine(
    tmp_path: Path, nats_url: str
) -> None:
    async with two_engines(tmp_path, nats_url) as (one, two):
        async with as_session(one, "a1") as producer, as_session(two, "b2") as declarer:
            await declarer.call("queue.declare", queue="work", ack_timeout=0.3)
            await producer.push("work", "job", reliable=True)
            async with as_session(two, "b1") as dying:
                first = await dying.pop("work", wait=20)  # dies holding it, unacked
            async with as_session(one, "a2") as survivor:
                again = await survivor.pop("work", wait=20, ack=True)
        assert (again["id"], again["attempt"]) == (first["id"], 2)
        await _until(lambda: two.bus_statistics().in_flight == 0)
        assert one.bus_statistics().in_flight == 0
        assert not one.bus_dead_letters()
        assert not two.bus_dead_letters()


async def test_queue_messages_an_engine_held_when_it_stopped_go_to_another_engine(
    tmp_path: Path, nats_url: str
) -> None:
    line = _bus_line(nats_url)
    a_sessions, b_sessions = IDLE.format(a="a1", b="a2"), IDLE.format(a="b1", b="b2")
    async with engine_on(tmp_path / "a", a_sessions, line) as one:
        async with as_session(one, "a1") as producer:
            await producer.push("work", "job", reliable=True)
        async with engine_on(tmp_path / "b", b_sessions, line) as two, as_session(two, "b1") as b1:
            first = await b1.pop("work", wait=20)  # unacked when its engine stops
        # restarted on its run, with no consumer of `work`: what it holds goes back
        async with (
            engine_on(tmp_path / "b", b_sessions, line) as two,
            as_session(one, "a2") as a2,
        ):
            again = await a2.pop("work", wait=30, ack=True)
            await _until(lambda: len(two.bus.mailbox("queue:work")) == 0)
        assert (again["id"], again["payload"]) == (first["id"], "job")


async def test_the_bus_cli_in_sessions_of_two_decks_exchanges_a_message(
    tmp_path: Path, nats_url: str
) -> None:
    line = _bus_line(nats_url)
    sender = f"""
[[session]]
name = "ping"
command = "{CLI} send pong '{{\\"hi\\": 1}}' --reliable && {CLI} recv -p --wait 30"
cwd = "{ROOT}"
"""
    receiver = f"""
[[session]]
name = "pong"
command = "{CLI} recv -p --wait 30 && {CLI} send ping '\\"back\\"' --reliable"
cwd = "{ROOT}"
"""
    async with (
        engine_on(tmp_path / "a", sender, line) as one,
        engine_on(tmp_path / "b", receiver, line) as two,
    ):
        await wait_text(two, "pong", '"hi": 1', timeout=40)
        await wait_text(one, "ping", "back", timeout=40)
        from engine.states import SessionState as S

        await wait_state(one, "ping", S.COMPLETED, timeout=20)
        await wait_state(two, "pong", S.COMPLETED, timeout=20)


async def test_a_reliable_message_sent_while_nats_is_down_arrives_when_it_is_back(
    tmp_path: Path,
) -> None:
    store, port = tmp_path / "nats", _free_port()
    store.mkdir()
    with contextlib.ExitStack() as server:
        url = server.enter_context(nats_server(store, port))
        async with two_engines(tmp_path, url) as (one, two):
            server.close()  # the NATS server goes away mid-run
            async with as_session(one, "a1") as a1, as_session(two, "b1") as b1:
                await a1.send("b1", "sent during the outage", reliable=True)  # the outbox has it
                await anyio.sleep(0.5)
                server.enter_context(nats_server(store, port))
                got = await b1.recv(wait=30, ack=True)
        assert (got["sender"], got["payload"]) == ("a1", "sent during the outage")


async def test_a_reliable_message_in_the_outbox_outlives_an_engine_restart(
    tmp_path: Path,
) -> None:
    store, port = tmp_path / "nats", _free_port()
    store.mkdir()
    a_sessions, b_sessions = IDLE.format(a="a1", b="a2"), IDLE.format(a="b1", b="b2")
    with contextlib.ExitStack() as server:
        line = _bus_line(server.enter_context(nats_server(store, port)))
        async with engine_on(tmp_path / "a", a_sessions, line) as one:
            server.close()
            async with as_session(one, "a1") as a1:
                await a1.send("b1", "across a restart", reliable=True)
            assert one.bus_statistics().published == 1
        # the engine stopped with it unpublished; NATS comes back, the engine restarts
        server.enter_context(nats_server(store, port))
        async with (
            engine_on(tmp_path / "a", a_sessions, line),
            engine_on(tmp_path / "b", b_sessions, line) as two,
            as_session(two, "b1") as b1,
        ):
            got = await b1.recv(wait=30, ack=True)
    assert (got["sender"], got["payload"]) == ("a1", "across a restart")


def test_run_headless_reports_an_unreachable_nats_server_in_one_line(tmp_path: Path) -> None:
    deck = _deck(tmp_path, IDLE.format(a="a", b="b"), "size = 1", 'bus = "nats://127.0.0.1:1"')
    out = subprocess.run(
        [sys.executable, "-m", "tui.cli", "run", "--headless", str(deck.path),
         "--run-dir", str(tmp_path / "run")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        "swarmdeck run: cannot reach the NATS server nats://127.0.0.1:1: nats: no servers "
        "available for connection"
    ]


def test_a_deck_asking_for_nats_without_nats_py_is_told_to_install_the_extra(
    tmp_path: Path,
) -> None:
    """nats-py made unimportable in a fresh interpreter, as on an install without the extra."""
    script = f"""
import sys, anyio
sys.modules["nats"] = None
from pathlib import Path
from tests.support import make_deck
from engine.engine import open_engine
from engine.bus.bus_errors import NatsLinkError

async def main():
    deck = make_deck(Path({str(tmp_path)!r}), 'x', top='bus = "nats://127.0.0.1:4222"')
    try:
        async with open_engine(deck, Path({str(tmp_path)!r}) / "run"):
            pass
    except NatsLinkError as error:
        print(error)

anyio.run(main)
"""
    (tmp_path / "x").mkdir()
    body = IDLE.format(a="a", b="b").replace("\n", "\\n").replace('"', '\\"')
    script = script.replace("'x'", f'"{body}"')
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert "nats-py is not installed: pip install 'swarmdeck[nats]'" in out.stdout, out.stderr


# -- the deck's field and its errors -----------------------------------------------------------


async def test_an_unreachable_nats_server_fails_the_engine_with_a_clear_error(
    tmp_path: Path,
) -> None:
    line = f'bus = "nats://user:secret@127.0.0.1:{_free_port()}"'
    with pytest.raises(NatsLinkError, match=r"cannot reach the NATS server nats://\*\*\*@127"):
        async with engine_on(tmp_path, IDLE.format(a="a", b="b"), line):
            pass


async def test_a_nats_server_without_jetstream_fails_the_engine_with_a_clear_error(
    tmp_path: Path,
) -> None:
    store = tmp_path / "nats"
    store.mkdir()
    refused = pytest.raises(NatsLinkError, match=r"is JetStream enabled \(nats-server -js\)")
    with nats_server(store, _free_port(), jetstream=False) as url, refused:
        async with engine_on(tmp_path / "deck", IDLE.format(a="a", b="b"), f'bus = "{url}"'):
            pass


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h:4222", "expected a URL nats://HOST[:PORT] or tls://HOST[:PORT]"),
        ("nats://h:99999", "expected a NATS URL"),
        ("nats://h:4222/two.words", "expected a namespace of letters"),
        ("nats://u:pw@h:4222?x=1", "got 'nats://***@h:4222?x=1'"),
    ],
)
def test_a_bad_bus_url_in_the_deck_is_a_clear_error(
    tmp_path: Path, url: str, expected: str
) -> None:
    with pytest.raises(DeckError, match="bus: ") as error:
        make_deck(tmp_path, IDLE.format(a="a", b="b"), top=f'bus = "{url}"')
    assert expected in str(error.value)
    assert "pw" not in str(error.value)
