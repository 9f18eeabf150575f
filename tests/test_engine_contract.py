"""One suite, two engines: every test runs on the in-process Engine and on a RemoteEngine
attached over a real Unix socket, through EngineAPI only."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from engine.commands import Done, Forked, ForkSession, SaveScreen, ScreenSaved, StartAll
from engine.errors import InvalidCommandError, SessionError, UnknownSessionError
from engine.events import SessionStateChanged
from engine.remote.remote_engine import HISTORY_EVERY
from engine.screen import line_text
from engine.states import SessionState as S
from tests.remote_support import attached, eventually, serving, wait_shows
from tests.support import running

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from engine.api import EngineAPI
    from engine.engine import Engine
    from engine.remote.remote_engine import RemoteEngine

pytestmark = pytest.mark.anyio

DECK = """
[[session]]
name = "echo"
command = "printf 'hello-contract\\n'; exec sleep 60"

[[session]]
name = "cat"
command = "exec cat"

[[session]]
name = "quick"
command = "echo quick-done"
"""


def _both(local: Engine, remote: RemoteEngine) -> list[EngineAPI]:
    """mypy proves both implementations satisfy EngineAPI."""
    return [local, remote]


@pytest.fixture(params=["local", "remote"])
async def api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EngineAPI]:
    async with running(tmp_path, DECK, pool="size = 3\nwarm = 1") as engine:
        if request.param == "local":
            yield engine
            return
        async with serving(engine) as server, attached(server) as remote:
            yield remote


async def test_lists_every_session_and_answers_info_for_each(api: EngineAPI) -> None:
    assert [s.name for s in api.list_sessions()] == ["echo", "cat", "quick"]
    assert api.session_info("cat").command == "exec cat"
    assert api.deck.name == "deck"
    assert api.pool_statistics().capacity == 3


async def test_screen_snapshot_shows_output_and_delta_returns_only_newer_rows(
    api: EngineAPI,
) -> None:
    await wait_shows(api, "echo", "hello-contract")
    await eventually(lambda: api.session_info("cat").state is S.ACTIVE)
    before = api.screen_snapshot("cat")
    await api.send_input("cat", b"typed-line\r")
    await wait_shows(api, "cat", "typed-line")
    delta = api.screen_delta("cat", before.revision)
    assert delta.revision > before.revision
    assert any("typed-line" in "".join(t for t, _ in line) for _, line in delta.changed)
    assert api.screen_delta("cat", delta.revision).changed == ()


async def test_pause_resume_and_terminate_move_the_session_through_its_states(
    api: EngineAPI,
) -> None:
    await wait_shows(api, "echo", "hello-contract")
    await api.pause("echo")
    assert api.session_info("echo").state is S.PAUSED
    await api.resume("echo")
    assert api.session_info("echo").state is S.ACTIVE
    await api.terminate("echo")
    assert api.session_info("echo").state is S.TERMINATED


async def test_resize_changes_the_screen_shape(api: EngineAPI) -> None:
    await eventually(lambda: api.session_info("cat").state is S.ACTIVE)
    await api.resize("cat", 100, 30)
    await eventually(
        lambda: (api.screen_snapshot("cat").cols, api.session_info("cat").rows) == (100, 30)
    )
    assert len(api.screen_snapshot("cat").lines) == 30


async def test_fork_adds_a_session_and_restart_requeues_a_final_one(api: EngineAPI) -> None:
    await eventually(lambda: api.session_info("quick").state is S.COMPLETED)
    with pytest.raises(SessionError, match="restart needs it final"):
        await api.restart("cat")
    await api.restart("quick")
    await eventually(lambda: len(api.session_info("quick").attempts) == 2)
    name = await api.fork("echo", {"env": {"X": "1"}})
    assert name == "echo-fork-1"
    await eventually(lambda: name in [s.name for s in api.list_sessions()])
    await wait_shows(api, name, "hello-contract")


async def test_add_starts_a_session_from_a_table_and_refuses_a_bad_one(api: EngineAPI) -> None:
    command = 'printf "added-%s\\n" "$X"; exec sleep 60'
    name = await api.add({"name": "extra", "command": command, "env": {"X": "1"}})
    assert name == "extra"
    await eventually(lambda: name in [s.name for s in api.list_sessions()])
    await wait_shows(api, name, "added-1")
    with pytest.raises(SessionError, match="a session named 'echo' exists"):
        await api.add({"name": "echo", "command": "true"})
    with pytest.raises(SessionError, match="cannot add a session: command"):
        await api.add({"name": "nocommand"})
    with pytest.raises(SessionError, match=r"cannot add: unknown host 'gpu9' \(known: none"):
        await api.add({"name": "far", "command": "true", "host": "gpu9"})
    with pytest.raises(SessionError, match="cannot fork: unknown host 'gpu9'"):
        await api.fork("echo", {"host": "gpu9"})


async def test_events_stream_reports_each_state_change(api: EngineAPI) -> None:
    await eventually(lambda: api.session_info("echo").state is S.ACTIVE)
    with api.subscribe() as events:
        await api.pause("echo")
        await api.resume("echo")
        seen = []
        async for event in events:
            if isinstance(event, SessionStateChanged) and event.session == "echo":
                seen.append(event.new)
            if len(seen) == 2:
                break
    assert seen == [S.PAUSED, S.ACTIVE]


async def test_unknown_session_raises_the_same_error_class(api: EngineAPI) -> None:
    with pytest.raises(UnknownSessionError, match="no session named 'nope'"):
        api.session_info("nope")
    with pytest.raises(UnknownSessionError):
        await api.pause("nope")
    with pytest.raises(UnknownSessionError):
        await api.resize("nope", 80, 24)
    await eventually(lambda: api.session_info("echo").state is S.ACTIVE)
    with pytest.raises(SessionError):
        await api.resume("echo")


async def test_scrollback_holds_the_earliest_lines_once_they_scroll_off_the_screen(
    api: EngineAPI,
) -> None:
    await eventually(lambda: api.session_info("cat").state is S.ACTIVE)
    api.watch_history("cat")  # as the room does for its selected session
    count = 2 * api.screen_snapshot("cat").rows
    await api.send_input("cat", b"".join(b"early-%03d\r" % i for i in range(count)))
    await wait_shows(api, "cat", f"early-{count - 1:03d}")
    await anyio.sleep(2 * HISTORY_EVERY + 0.5)  # output has stopped: history has caught up
    history = [line_text(line) for line in api.scrollback("cat")]  # the first answer
    assert any("early-000" in line for line in history), history


async def test_every_command_is_a_typed_call_whose_refusal_reaches_the_caller(
    api: EngineAPI,
) -> None:
    """The same models, results and errors in process and over the socket: a refused
    fork, restart or resize raises in the caller instead of vanishing on the way."""
    await eventually(lambda: api.session_info("quick").state is S.COMPLETED)
    with pytest.raises(SessionError, match="priority"):
        await api.fork("echo", {"priority": "urgent"})
    with pytest.raises(InvalidCommandError, match="cols"):
        await api.resize("cat", 5000, 10)
    with pytest.raises(UnknownSessionError):
        await api.restart("nope")
    forked = await api.run(ForkSession(session="quick", overrides={"name": "typed"}))
    assert forked == Forked(name="typed")
    saved = await api.run(SaveScreen(session="quick"))
    assert isinstance(saved, ScreenSaved)
    assert saved.text.name == "quick.screen.txt"
    assert await api.run(StartAll()) == Done()


async def test_a_fork_of_a_fork_is_fully_known_to_every_client(api: EngineAPI) -> None:
    await api.terminate("cat")  # a free slot for each fork (pool size 3)
    await api.terminate("echo")
    first = await api.fork("echo")
    await eventually(lambda: first in [s.name for s in api.list_sessions()])
    second = await api.fork(first, {"env": {"Y": "2"}})  # needs the first fork's spec
    assert second == "echo-fork-1-fork-1"
    await eventually(lambda: second in [s.name for s in api.list_sessions()])
    await wait_shows(api, second, "hello-contract")
