"""The bus from sessions on a [[host]]: the engine's socket forwarded over a real sshd, and
`swarmdeck bus` there with nothing installed (docs/hosts.md, "The bus on a host").

The host is this machine's loopback sshd, so the test also sees the host's /tmp: the
forward's directory is checked there directly. The remote sessions' PATH is sshd's
default one, where no `swarmdeck` is installed: what they run is the script the engine
wrote.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from typing import TYPE_CHECKING

import anyio
import pytest

from engine.events import BusMessageAcked, BusMessageRedelivered
from engine.states import SessionState
from engine.terminals.hosts.bus_shim import cli_code, library
from tests.sshd_support import running_sshd
from tests.support import BUS_CLI, ROOT, wait_state, wait_text
from tests.support import running as running_deck

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager
    from pathlib import Path

    from engine.engine import Engine
    from engine.events import Event
    from tests.sshd_support import Sshd

pytestmark = pytest.mark.anyio
S = SessionState
DEADLINE = 30.0  # below the per-test timeout
TOKEN = os.environ["SWARMDECK_TEST_TOKEN"]
FINAL = (S.COMPLETED, S.FAILED, S.LOST, S.TERMINATED)


def host_table(sshd: Sshd, name: str = "box1") -> str:
    return (
        f'[[host]]\nname = "{name}"\nssh = "{sshd.address}"\nidentity = "{sshd.identity}"\n'
        f'known_hosts = "{sshd.known_hosts}"\nkeepalive = 1.0\npool = {{ size = 3, warm = 0 }}\n'
    )


def session(name: str, command: str, host: str | None = "box1", extra: str = "") -> str:
    where = f'host = "{host}"\n' if host else ""
    return (
        f"[[session]]\nname = \"{name}\"\ncommand = '''{command}'''\n{where}"
        f'env = {{ SWARMDECK_TEST_TOKEN = "{TOKEN}" }}\n{extra}\n'
    )


def running(tmp_path: Path, body: str) -> AbstractAsyncContextManager[Engine]:
    """Room for every session at once: max_parallel is still bounded by the local pool's
    size (docs/hosts.md, next step 3)."""
    return running_deck(tmp_path, body, pool="size = 4\nwarm = 1")


def test_the_bus_cli_sent_to_hosts_runs_with_nothing_but_python(tmp_path: Path) -> None:
    """What a host runs: the library alone, isolated (-I -S), outside any session."""
    for path, content in library().items():
        (tmp_path / "lib" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "lib" / path).write_text(content)
    command = ["python3", "-I", "-S", "-c", cli_code(str(tmp_path / "lib"))]
    env = {"PATH": os.environ["PATH"], "SWARMDECK_TEST_TOKEN": TOKEN}
    done = subprocess.run(
        [*command, "publish", "t", "1"], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 3, done.stderr
    assert "set only inside a swarmdeck session" in done.stderr
    problem = {**env, "SWARMDECK_BUS_ERROR": "host 'x': refused"}
    done = subprocess.run(
        [*command, "stats"], capture_output=True, text=True, env=problem, check=False
    )
    assert (done.returncode, done.stderr) == (3, "swarmdeck bus: no bus: host 'x': refused\n")
    assert list((tmp_path / "lib" / "engine" / "bus").glob("__pycache__/cli.*.pyc"))  # cached


def forwards_shown(engine: Engine, name: str) -> list[str]:
    """The forward directories on the (loopback) host, as the session printed them (`via
    $SWARMDECK_BUS`), oldest first: other engines' forwards may be in /tmp meanwhile."""
    return re.findall(r"via (/tmp/swarmdeck-bus-[0-9a-f]+)/bus\.sock", text(engine, name))


def events(engine: Engine) -> list[Event]:
    seen: list[Event] = []
    engine.hub.listen(seen.append)
    return seen


def text(engine: Engine, name: str) -> str:
    return "\n".join(line.rstrip() for line in engine.sessions[name].screen.text())


# publish until somebody has subscribed (the CLI says so on stderr when nobody has)
PUBLISH = """while swarmdeck bus publish news '"from afar"' 2>&1 >/dev/null | grep -q nobody; do
sleep 0.2; done; echo "published via $SWARMDECK_BUS" """


async def test_a_session_on_a_host_publishes_and_a_local_session_receives(
    sshd: Sshd, tmp_path: Path
) -> None:
    body = (
        host_table(sshd)
        + session("far", PUBLISH, extra="cols = 200")
        + session("near", f"{BUS_CLI} subscribe news --count 1 -p", host=None)
    )
    async with running(tmp_path, body) as engine:
        await wait_state(engine, "near", *FINAL, timeout=DEADLINE)
        await wait_state(engine, "far", *FINAL, timeout=DEADLINE)
        near, far = engine.session_info("near"), engine.session_info("far")
        shown_near, shown_far = text(engine, "near"), text(engine, "far")
        [made] = forwards_shown(engine, "far")
        mode = os.stat(made).st_mode & 0o777
        socket_mode = os.stat(f"{made}/bus.sock").st_mode & 0o777
    assert (far.state, far.exit_code) == (S.COMPLETED, 0), shown_far
    assert (near.state, near.exit_code) == (S.COMPLETED, 0), shown_near
    assert '"from afar"' in shown_near
    assert (mode, socket_mode) == (0o700, 0o600)
    assert not os.path.exists(made)  # noqa: ASYNC240 (removed when the engine stopped)


LISTEN = """swarmdeck bus subscribe orders --count 1 -p && swarmdeck bus recv -p --wait 25
echo "listened=$?" """
TALK = f"""while {BUS_CLI} publish orders '"on the topic"' 2>&1 >/dev/null | grep -q nobody; do
sleep 0.2; done; {BUS_CLI} send far '"to its inbox"' --reliable"""


async def test_a_session_on_a_host_subscribes_and_receives_what_is_sent_to_it(
    sshd: Sshd, tmp_path: Path
) -> None:
    body = host_table(sshd) + session("far", LISTEN) + session("near", TALK, host=None)
    async with running(tmp_path, body) as engine:
        for name in ("far", "near"):
            await wait_state(engine, name, *FINAL, timeout=DEADLINE)
        info, shown = engine.session_info("far"), text(engine, "far")
        figures = engine.bus_statistics()
    assert (info.state, info.exit_code) == (S.COMPLETED, 0), shown
    assert '"on the topic"' in shown
    assert '"to its inbox"' in shown
    assert "listened=0" in shown
    assert (figures.acked, figures.in_flight) == (1, 0)  # recv acked the reliable one


POP_AND_ACK = """m=$(swarmdeck bus queue pop jobs --no-ack --wait 50) || exit 9
echo "got $m"
[ "$SWARMDECK_ATTEMPT" = 1 ] && [ -n "$KILL_FIRST" ] && kill -9 $$
id=$(echo "$m" | sed 's/.*"id": "\\([^"]*\\)".*/\\1/')
swarmdeck bus ack "$id" && echo "acked $id" """
PUSH = " && ".join(f"{BUS_CLI} queue push jobs '{{\"n\": {n}}}' --reliable" for n in (1, 2))


async def test_remote_replicas_pop_and_ack_what_a_local_session_pushed(
    sshd: Sshd, tmp_path: Path
) -> None:
    body = (
        host_table(sshd)
        + session("worker", POP_AND_ACK, extra="replicas = 2")
        + session("producer", PUSH, host=None)
    )
    async with running(tmp_path, body) as engine:
        seen = events(engine)
        for name in ("worker#1", "worker#2", "producer"):
            await wait_state(engine, name, *FINAL, timeout=DEADLINE)
        infos = [engine.session_info(n) for n in ("worker#1", "worker#2", "producer")]
        shown = [text(engine, n) for n in ("worker#1", "worker#2")]
        figures = engine.bus_statistics()
    assert [(i.state, i.exit_code) for i in infos] == [(S.COMPLETED, 0)] * 3, shown
    assert all("acked " in screen for screen in shown)
    assert sorted('"n": 1' in screen for screen in shown) == [False, True]  # one each
    acked = {e.session for e in seen if isinstance(e, BusMessageAcked)}
    assert acked == {"worker#1", "worker#2"}
    assert not [e for e in seen if isinstance(e, BusMessageRedelivered)]
    assert (figures.acked, figures.redeliveries, figures.in_flight) == (2, 0, 0)


async def test_a_remote_consumer_killed_before_its_ack_gets_the_message_again(
    sshd: Sshd, tmp_path: Path
) -> None:
    again = "retries = 1\nbackoff = { initial = 0.1 }\ncols = 250"
    worker = session("worker", POP_AND_ACK, extra=again)
    worker = worker.replace("env = {", 'env = { KILL_FIRST = "1", ')
    push = f"{BUS_CLI} queue push jobs '{{\"n\": 7}}' --reliable"
    body = host_table(sshd) + worker + session("producer", push, host=None)
    async with running(tmp_path, body) as engine:
        seen = events(engine)
        await wait_text(engine, "worker", "--- attempt 2 ---", timeout=DEADLINE)
        await wait_state(engine, "worker", *FINAL, timeout=DEADLINE)
        info, shown = engine.session_info("worker"), text(engine, "worker")
        figures = engine.bus_statistics()
    assert (info.state, info.exit_code) == (S.COMPLETED, 0), shown
    assert [a.number for a in info.attempts] == [1, 2]
    [redelivered] = [e for e in seen if isinstance(e, BusMessageRedelivered)]
    [acked] = [e for e in seen if isinstance(e, BusMessageAcked)]
    assert redelivered.reason == "consumer-ended"
    assert redelivered.id == acked.id
    assert f'"id": "{acked.id}"' in shown  # the second attempt popped it again
    assert '"n": 7' in shown
    assert '"attempt": 2' in shown
    assert f"acked {acked.id}" in shown
    assert (figures.acked, figures.in_flight) == (1, 0)


RAW_PUBLISH = (
    'python3 -c "import os, socket; s = socket.socket(socket.AF_UNIX); '
    "s.connect(os.environ['SWARMDECK_BUS']); "
    's.sendall(b\'{\\"op\\":\\"publish\\",\\"req\\":1,\\"topic\\":\\"t\\",\\"payload\\":1}\\n\'); '
    "print('raw', s.makefile().readline())\""
)
TOKENS = f"""SWARMDECK_BUS_TOKEN=wrong swarmdeck bus publish t 1; echo "wrong=$?"
env -u SWARMDECK_BUS_TOKEN swarmdeck bus publish t 1; echo "missing=$?"
{RAW_PUBLISH}
swarmdeck bus publish t 1 >/dev/null 2>&1; echo "right=$?" """


async def test_a_process_on_a_host_without_the_token_is_refused(sshd: Sshd, tmp_path: Path) -> None:
    async with running(tmp_path, host_table(sshd) + session("far", TOKENS)) as engine:
        await wait_state(engine, "far", *FINAL, timeout=DEADLINE)
        info, shown = engine.session_info("far"), text(engine, "far")
    assert info.state is S.COMPLETED, shown
    assert "bad-token" in shown
    assert "wrong=4" in shown
    assert "missing=3" in shown
    assert "not-authenticated" in shown
    assert "right=0" in shown


INSTALLED = f"""swarmdeck run; echo "other=$?"
PYTHONPATH={ROOT} {sys.executable} -m tui.cli bus publish t 1 >/dev/null 2>&1; echo "client=$?"
PATH="$PATH:$INSTALLED" swarmdeck run deck.toml
PATH="$PATH:$INSTALLED" swarmdeck bus publish t 1 >/dev/null; echo "bus=$?" """


async def test_swarmdeck_on_a_host_runs_bus_itself_and_other_commands_where_installed(
    sshd: Sshd, tmp_path: Path
) -> None:
    installed = tmp_path / "installed"
    installed.mkdir()
    (installed / "swarmdeck").write_text('#!/bin/sh\necho "installed swarmdeck: $*"\n')
    (installed / "swarmdeck").chmod(0o755)
    far = session("far", INSTALLED).replace("env = {", f'env = {{ INSTALLED = "{installed}", ')
    async with running(tmp_path, host_table(sshd) + far) as engine:
        await wait_state(engine, "far", *FINAL, timeout=DEADLINE)
        info, shown = engine.session_info("far"), text(engine, "far")
    assert info.state is S.COMPLETED, shown
    assert "only `swarmdeck bus ...` is available on this host" in shown
    assert "other=127" in shown
    assert "client=0" in shown  # an installed swarmdeck's client reads the same variables
    assert "installed swarmdeck: run deck.toml" in shown  # handed on
    assert "bus=0" in shown  # still the engine's own


REPUBLISH = """while swarmdeck bus publish news "\\"attempt $SWARMDECK_ATTEMPT\\"" 2>&1 >/dev/null |
grep -q nobody; do sleep 0.2; done; echo "published $SWARMDECK_ATTEMPT via $SWARMDECK_BUS"
sleep 600"""


async def test_the_forward_is_back_after_the_host_link_reconnects(
    sshd: Sshd, tmp_path: Path
) -> None:
    again = "retries = 1\nbackoff = { initial = 0.1 }\ncols = 200"
    far = session("far", REPUBLISH, extra=again)
    near = session("near", f"{BUS_CLI} subscribe news --count 2 -p", host=None)
    async with running(tmp_path, host_table(sshd) + far + near) as engine:
        await wait_text(engine, "far", "published 1", timeout=DEADLINE)
        [first] = forwards_shown(engine, "far")
        sshd.drop_connections()
        await wait_text(engine, "far", "published 2", timeout=DEADLINE)
        await wait_state(engine, "near", *FINAL, timeout=DEADLINE)
        [_, second] = forwards_shown(engine, "far")  # attempt 1's line is in the history
        first_left = os.path.exists(first)  # noqa: ASYNC240
        shown = text(engine, "near")
        await engine.sessions["far"].terminate()
    assert '"attempt 1"' in shown
    assert '"attempt 2"' in shown
    assert second != first  # a fresh directory for the new connection
    assert not first_left  # the dropped connection's, removed then
    assert not os.path.exists(second)  # noqa: ASYNC240 (and that one at the engine's end)


async def test_a_host_refusing_socket_forwarding_is_reported_and_its_sessions_run_without_bus(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    command = "swarmdeck bus publish t 1; echo rc=$?"
    body = session("a", command) + session("b", command)
    strict = running_sshd(tmp_path / "strict", ["AllowStreamLocalForwarding no"])
    told = caplog.at_level(logging.WARNING, logger="engine.terminals.hosts")
    with strict as sshd, told:
        async with running(tmp_path, host_table(sshd) + body) as engine:
            for name in ("a", "b"):
                await wait_state(engine, name, *FINAL, timeout=DEADLINE)
            infos = [engine.session_info(n) for n in ("a", "b")]
            shown = [text(engine, n) for n in ("a", "b")]
            [host] = engine.host_statistics()
    assert [(i.state, i.exit_code) for i in infos] == [(S.COMPLETED, 0)] * 2, shown
    for screen in shown:
        assert "rc=3" in screen
        assert "host 'box1': its sshd refused to forward the bus socket" in screen
        assert "AllowStreamLocalForwarding" in screen
    assert "AllowStreamLocalForwarding" in str(host.bus_problem)
    # the same setting refuses the warm terminals' control streams: fresh terminals run
    assert "AllowStreamLocalForwarding" in str(host.warm_problem)
    warnings = [r for r in caplog.records if "refused to forward" in r.getMessage()]
    assert len(warnings) == 1  # once per host
    warm = [r for r in caplog.records if "refused the warm terminal" in r.getMessage()]
    assert len(warm) == 1


async def test_a_host_connected_at_start_has_the_bus_before_any_session_asks(
    sshd: Sshd, tmp_path: Path
) -> None:
    """`pool.warm` > 0 connects at start: the forward is set up then, so the host's first
    sessions do not wait for it."""
    table = host_table(sshd).replace("warm = 0", "warm = 1")
    async with running(tmp_path, table + session("near", "sleep 60", host=None)) as engine:
        assert engine.pool.hosts is not None
        forward = engine.pool.hosts._links["box1"].bus
        with anyio.fail_after(DEADLINE):
            while forward.socket is None:
                await anyio.sleep(0.05)
        ready = os.path.exists(forward.socket)  # noqa: ASYNC240
        await engine.sessions["near"].terminate()
    assert ready
