"""Services: a `ready` probe (a line of output and/or a TCP port), dependents that wait on
`condition = "ready"`, and `daemon = true` sessions stopped, not failed, once the rest of
the run is done. Real servers and shell loops."""

from __future__ import annotations

import contextlib
import socket
import sys
from typing import TYPE_CHECKING

import anyio
import pytest

from engine.deck.ready_spec import ReadySpec
from engine.deck.spec import parse_deck
from engine.engine import open_engine
from engine.errors import DeckError
from engine.events import SessionDetailChanged
from engine.sessions.probe import ReadyProbe
from engine.states import SessionState
from tests.support import make_deck, running, wait_state
from tests.tui_support import open_room, until
from tui.widgets.session_list import matches

if TYPE_CHECKING:
    from pathlib import Path

    from anyio.streams.memory import MemoryObjectReceiveStream

    from engine.events import Event

pytestmark = pytest.mark.anyio
S = SessionState


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def drain(stream: MemoryObjectReceiveStream[Event]) -> list[Event]:
    events = []
    with contextlib.suppress(anyio.WouldBlock):
        while True:
            events.append(stream.receive_nowait())
    return events


async def test_a_dependent_starts_once_the_http_server_is_ready(tmp_path: Path) -> None:
    port = free_port()
    body = f"""
[[session]]
name = "web"
command = ["{sys.executable}", "-m", "http.server", "--bind", "127.0.0.1", "{port}"]
daemon = true
ready = {{ log = "Serving HTTP", port = {port} }}

[[session]]
name = "client"
command = ["{sys.executable}", "-c", "import urllib.request as u; print('status', u.urlopen('http://127.0.0.1:{port}/').status)"]
depends_on = [{{ name = "web", condition = "ready" }}]
"""
    async with open_engine(make_deck(tmp_path, body), tmp_path / "run") as engine:
        with engine.subscribe() as stream:
            await engine.start_all()
            assert await engine.wait_finished()
            events = drain(stream)
        client, web = engine.session_info("client"), engine.session_info("web")
        assert client.state is S.COMPLETED
        assert any("status 200" in line for line in engine.sessions["client"].screen.text())
        assert web.state is S.TERMINATED  # stopped at the end, by the run
        verdict = engine.verdict()
        assert (verdict.outcome, verdict.ok) == ("succeeded", True), verdict
    ready = [e for e in events if isinstance(e, SessionDetailChanged) and e.detail == "ready"]
    assert [e.session for e in ready] == ["web"]


async def test_a_shell_service_is_ready_at_its_line_and_the_dependent_waits(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "marker"
    body = f"""
[[session]]
name = "loop"
command = "sleep 0.5; touch {marker}; echo now-listening; while :; do sleep 1; done"
daemon = true
ready = {{ log = "now-listen.ng" }}

[[session]]
name = "after"
command = "test -f {marker} && echo saw-marker"
depends_on = [{{ name = "loop", condition = "ready" }}]
"""
    async with running(tmp_path, body) as engine:
        assert await engine.wait_finished()
        after, loop = engine.session_info("after"), engine.session_info("loop")
        assert after.state is S.COMPLETED, after.reason
        assert loop.state is S.TERMINATED
        assert engine.verdict().outcome == "succeeded"
        summary = engine.write_summary().read_text()
        assert '"ok": true' in summary


async def test_a_service_not_ready_in_time_fails_and_its_dependent_is_skipped(
    tmp_path: Path,
) -> None:
    body = """
[[session]]
name = "mute"
command = "echo something else; sleep 60"
daemon = true
ready = { log = "never printed", timeout = "1s" }

[[session]]
name = "dependent"
command = "true"
depends_on = [{ name = "mute", condition = "ready" }]
"""
    async with running(tmp_path, body) as engine:
        assert not await engine.wait_finished()
        mute, dependent = engine.session_info("mute"), engine.session_info("dependent")
        assert mute.state is S.FAILED
        assert mute.reason.startswith("not ready within 1s: log /never printed/ not seen")
        assert dependent.state is S.SKIPPED
        assert "needed: ready" in dependent.reason


async def test_the_room_shows_a_service_as_ready(tmp_path: Path) -> None:
    body = """
[[session]]
name = "svc"
command = "echo up; exec sleep 60"
daemon = true
ready = { log = "^up" }

[[session]]
name = "work"
command = "sleep 60"
"""
    async with open_room(tmp_path, body) as (engine, app, pilot):
        await until(pilot, lambda: engine.session_info("svc").detail == "ready")
        listing = app.session_list
        await until(pilot, lambda: str(listing.get_cell("svc", "state")) == "ready")
        assert matches(engine.session_info("svc"), "read")  # the filter knows it too
        assert not matches(engine.session_info("work"), "read")
        await engine.terminate_all()


def test_waiting_on_ready_needs_a_probe(tmp_path: Path) -> None:
    text = """
[[session]]
name = "plain"
command = "sleep 1"

[[session]]
name = "needs"
command = "true"
depends_on = [{ name = "plain", condition = "ready" }]
"""
    with pytest.raises(DeckError) as caught:
        parse_deck(text, tmp_path / "deck.toml")
    assert caught.value.problems == [
        "session[2] (needs).depends_on[1] (plain).condition: waits for 'plain' to be ready, "
        "but 'plain' has no `ready` probe"
    ]


def test_a_ready_probe_needs_a_log_or_a_port(tmp_path: Path) -> None:
    text = '[[session]]\nname = "s"\ncommand = "true"\nready = { timeout = 3 }\n'
    with pytest.raises(DeckError) as caught:
        parse_deck(text, tmp_path / "deck.toml")
    assert caught.value.problems == [
        "session[1] (s).ready: expected `log` (a pattern of its output) and/or `port` (TCP)"
    ]


async def test_daemons_still_queued_when_the_rest_is_done_never_start(tmp_path: Path) -> None:
    body = """
[[session]]
name = "job"
command = "sleep 0.5"

[[session]]
name = "svc"
command = "exec sleep 60"
daemon = true
ready = { log = "never" }

[[session]]
name = "late"
command = "exec sleep 60"
daemon = true
depends_on = [{ name = "svc", condition = "ready" }]
"""
    async with running(tmp_path, body) as engine:
        assert await engine.wait_finished()
        late, svc = engine.session_info("late"), engine.session_info("svc")
        assert (late.state, late.started_at) == (S.TERMINATED, None)
        assert late.reason == "the run is done before it started"
        assert svc.state is S.TERMINATED
        assert engine.verdict().outcome == "succeeded"


async def test_a_session_waiting_for_an_operator_start_does_not_keep_the_daemons(
    tmp_path: Path,
) -> None:
    """`autostart = false` may never be started: once the rest is done, the daemons stop
    as if it were not there (it is left out of the verdict)."""
    body = """
[[session]]
name = "job"
command = "sleep 0.3"

[[session]]
name = "svc"
command = "exec sleep 60"
daemon = true

[[session]]
name = "manual"
command = "true"
autostart = false
"""
    async with running(tmp_path, body) as engine:
        await wait_state(engine, "job", S.COMPLETED)
        await wait_state(engine, "svc", S.TERMINATED, timeout=20)
        assert engine.session_info("svc").reason.startswith("the run is done")
        assert engine.session_info("manual").state is S.QUEUED


def test_the_log_probe_finds_a_line_split_across_reads_and_coloured() -> None:
    probe = ReadyProbe(ReadySpec(log="^Serving HTTP on"))
    probe.feed("starting\r\nServ")
    assert probe.missing() == "log /^Serving HTTP on/ not seen"
    probe.feed("ing \x1b[1mHTTP\x1b[0m on 0.0.0.0\r\n")
    assert probe.missing() == ""  # the log was seen
