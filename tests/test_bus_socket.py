"""The bus from outside the engine: real sockets, real sessions, the `swarmdeck bus` CLI."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from engine.bus.bus_client import AsyncBusClient
from engine.bus.cli import EXIT, _opts, _parser
from engine.events import BusRequestRefused
from engine.states import SessionState as S
from tests.support import BUS_CLI, ROOT, running, wait_state, wait_text

if TYPE_CHECKING:
    from pathlib import Path

    from anyio.abc import SocketStream

    from engine.engine import Engine

pytestmark = pytest.mark.anyio
CLI = BUS_CLI
IDLE = """
[[session]]
name = "idle"
command = "sleep 30"

[[session]]
name = "other"
command = "sleep 30"
"""


async def frames(stream: SocketStream, lines: list[bytes], count: int) -> list[dict[str, Any]]:
    await stream.send(b"".join(lines))
    buf = b""
    with anyio.fail_after(5):
        while buf.count(b"\n") < count:
            buf += await stream.receive()
    return [json.loads(line) for line in buf.splitlines()]


async def test_bad_frames_get_clear_errors_and_the_connection_stays_up(tmp_path: Path) -> None:
    async with running(tmp_path, IDLE) as engine:
        events = engine.subscribe()
        path = engine.bus.socket_path
        assert path is not None
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        token = engine.bus.token_for("idle")
        async with await anyio.connect_unix(path) as s:
            replies = await frames(
                s,
                [
                    b'{"op":"publish","req":1,"topic":"t","payload":1}\n',
                    b'{"op":"hello","req":2,"session":"idle","token":"wrong"}\n',
                    b"this is not json\n",
                    json.dumps({"op": "hello", "req": 3, "session": "idle", "token": token})
                    .encode() + b"\n",
                    b'{"op":"launch-missiles","req":4}\n',
                    b'{"op":"publish","req":5,"topic":"bad topic","payload":1}\n',
                    b'{"op":"publish","req":6,"topic":"t","payload":"' + b"x" * 300_000 + b'"}\n',
                    b'{"op":"publish","req":7,"topic":"t","payload":"' + b"x" * 400_000 + b'"}\n',
                    b'{"op":"publish","req":8,"topic":"t"}\n',
                    b'{"op":"ping","req":9}\n',
                ],
                10,
            )  # fmt: skip
        codes = [r["error"]["code"] if not r["ok"] else "ok" for r in replies]
        assert codes == [
            "not-authenticated", "bad-token", "bad-frame", "ok", "unknown-command", "bad-frame",
            "payload-too-large", "frame-too-large", "bad-frame", "ok",
        ]  # fmt: skip
        assert "field 'payload' is required" in replies[8]["error"]["message"]
        assert replies[9] == {"re": 9, "ok": True, "session": "idle"}
        with anyio.fail_after(2):
            async for event in events:
                if isinstance(event, BusRequestRefused) and event.code == "bad-token":
                    break
        assert engine.bus_statistics().refused >= 7
        events.close()


async def test_a_session_publishes_with_the_cli_and_the_operator_receives_it(
    tmp_path: Path,
) -> None:
    body = f"""
[[session]]
name = "pub"
command = "{CLI} publish build.done '{{\\"ok\\": true}}' --reliable && {CLI} recv -p --wait 5"
cwd = "{ROOT}"
"""
    async with running(tmp_path, body) as engine:
        with engine.bus_subscribe("build.>") as sub, anyio.fail_after(10):
            message = await sub.get()
            sub.ack(message)
        assert (message.sender, message.payload, message.reliable) == ("pub", {"ok": True}, True)
        engine.bus_send("pub", {"answer": 42})
        await wait_state(engine, "pub", S.COMPLETED)
        await wait_text(engine, "pub", '{"answer": 42}')


async def test_sessions_coordinate_through_a_queue_and_request_reply(tmp_path: Path) -> None:
    body = f"""
[[session]]
name = "worker"
command = "for i in 1 2 3; do {CLI} queue pop jobs -p; done; {CLI} subscribe 'sum.*' --count 1 > req.json; {CLI} reply $(python3 -c 'import json; print(json.load(open(\\"req.json\\"))[\\"id\\"])') 6"
cwd = "{ROOT}"

[[session]]
name = "boss"
command = "for i in 1 2 3; do {CLI} queue push jobs $i --reliable; done; sleep 1; {CLI} request sum.all '[1,2,3]' -p --timeout 5"
cwd = "{ROOT}"
"""  # noqa: E501
    async with running(tmp_path, body.replace(f'cwd = "{ROOT}"', f'cwd = "{tmp_path}"')) as engine:
        with anyio.fail_after(20):
            assert await engine.wait_finished(), [s.info() for s in engine.sessions.values()]
        await wait_text(engine, "boss", "6")
        assert [ln for ln in engine.sessions["worker"].screen.text() if ln.strip()][:3] == [
            "1", "2", "3",
        ]  # fmt: skip
        assert engine.bus_statistics().in_flight == 0


def test_the_cli_explains_itself_with_exit_codes_outside_a_session() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWARMDECK_BUS")}
    result = subprocess.run(
        [sys.executable, "-m", "tui.cli", "bus", "publish", "t", "1"],
        capture_output=True, text=True, env=env, cwd=ROOT, check=False,
    )  # fmt: skip
    assert result.returncode == EXIT["no-bus"]
    assert "only inside a swarmdeck session" in result.stderr
    bad_json = subprocess.run(
        [sys.executable, "-m", "tui.cli", "bus", "publish", "t", "{oops"],
        capture_output=True, text=True, env=env, cwd=ROOT, check=False,
    )  # fmt: skip
    assert bad_json.returncode == EXIT["usage"]


def test_the_cli_does_not_import_pydantic_anyio_or_asyncio() -> None:
    code = (
        "import sys; from engine.bus import cli;"
        "print(sorted(m for m in ('pydantic', 'anyio', 'asyncio') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "[]"


HEAVY = {"pydantic", "anyio", "msgspec", "textual", "rich", "asyncssh", "sqlite3"}


async def test_publishing_from_the_cli_loads_only_the_standard_library_and_the_bus_client(
    tmp_path: Path,
) -> None:
    """`swarmdeck bus` runs inside every session, so its start-up is its cost: what it
    imports is checked here (deterministic); how long it takes is bench/bus.py's figure."""
    async with running(tmp_path, IDLE) as engine:
        env = {**os.environ, **engine.session_env("idle"), "SWARMDECK_SESSION": "idle"}
        result = await anyio.run_process(
            [f"{ROOT}/.venv/bin/swarmdeck", "bus", "publish", "t", "1"],
            env={**env, "PYTHONPROFILEIMPORTTIME": "1"},
            check=False,
        )
        assert result.returncode == 0, result.stderr
        imported = {
            line.rsplit("|", 1)[-1].strip().split(".")[0]
            for line in result.stderr.decode().splitlines()
            if line.startswith("import time:") and "|" in line
        }
        assert "engine" in imported  # the check sees our own modules
        assert imported & HEAVY == set()


async def test_one_ack_frame_settles_many_reliable_deliveries(tmp_path: Path) -> None:
    async with running(tmp_path, IDLE) as engine:
        path = engine.bus.socket_path
        assert path is not None
        token = engine.bus.token_for("idle")
        hello = {"op": "hello", "req": 1, "session": "idle", "token": token}
        publish = b'{"op":"publish","quiet":true,"topic":"jobs.x","payload":%d,"reliable":true}\n'
        async with await anyio.connect_unix(path) as s:
            got = await frames(
                s,
                [json.dumps(hello).encode() + b"\n",
                 b'{"op":"subscribe","req":2,"pattern":"jobs.>"}\n',
                 *(publish % n for n in range(3))],
                5,
            )  # fmt: skip
            ids = [f["msg"]["id"] for f in got if "msg" in f]
            assert [f["msg"]["payload"] for f in got if "msg" in f] == [0, 1, 2]
            assert engine.bus_statistics().in_flight == 3
            ack = {"op": "ack", "req": 3, "ids": ids}
            again = {"op": "ack", "req": 4, "ids": ids[:1]}
            replies = await frames(s, [json.dumps(f).encode() + b"\n" for f in (ack, again)], 2)
        assert replies[0] == {"re": 3, "ok": True}
        assert replies[1]["error"]["code"] == "unknown-target"
        assert engine.bus_statistics().in_flight == 0


async def test_a_cancelled_async_call_leaves_the_async_client_working(tmp_path: Path) -> None:
    async with running(tmp_path, IDLE) as engine:
        client = await _async_client(engine, "idle")
        try:
            with anyio.move_on_after(0.05):
                await client.pop("jobs", wait=0.2)  # its timeout reply comes after we gave up
            await anyio.sleep(0.4)
            with anyio.fail_after(2):
                assert (await client.call("ping"))["ok"]
                await client.push("jobs", "after")
                assert (await client.pop("jobs", wait=1))["payload"] == "after"
        finally:
            await client.aclose()


async def test_the_async_client_sends_receives_broadcasts_and_publishes(tmp_path: Path) -> None:
    async with running(tmp_path, IDLE) as engine:
        idle, other = await _async_client(engine, "idle"), await _async_client(engine, "other")
        try:
            with anyio.fail_after(5):
                await other.subscribe("news.*")
                await idle.send("other", {"n": 1}, reliable=True, priority="high", ttl=30)
                got = await other.recv(wait=1, ack=True)
                assert (got["payload"], got["sender"], got["priority"], got["reliability"]) == (
                    {"n": 1}, "idle", "high", "reliable",
                )  # fmt: skip
                assert (got["ttl"], got["receivers"]) == (30, ["other"])
                assert await idle.broadcast("all") == 1
                assert (await other.recv(wait=1))["payload"] == "all"
                await idle.publish("news.x", 7, priority="low", ttl=5)
                pushed = await other.messages.get()
                assert (pushed["payload"], pushed["priority"], pushed["ttl"]) == (7, "low", 5)
            assert engine.bus_statistics().in_flight == 0
        finally:
            await idle.aclose()
            await other.aclose()


async def _async_client(engine: Engine, session: str) -> AsyncBusClient:
    path = engine.bus.socket_path
    assert path is not None
    return await AsyncBusClient.connect(str(path), session, engine.bus.token_for(session))


def test_the_cli_queue_push_takes_the_same_message_options_as_publish() -> None:
    parse = _parser().parse_args
    push = parse(["queue", "push", "jobs", "1", "--reliable", "--priority", "high", "--ttl", "5"])
    publish = parse(["publish", "t", "1", "--reliable", "--priority", "high", "--ttl", "5"])
    assert _opts(push) == _opts(publish) == {"reliable": True, "priority": "high", "ttl": 5.0}
    assert _opts(parse(["send", "b", "1"])) == {"reliable": False, "priority": "normal"}
