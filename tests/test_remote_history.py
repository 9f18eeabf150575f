"""An attached room's history is the engine's, line for line, fetched a little at a time:
`history_since` sends only the stored lines a client lacks (by absolute index), with the
tail and screen of one instant; floods past the history cap, clear, RIS and resizes
included. The protocol-6 `history` request still answers."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from engine.remote.history_copy import HistoryCopy
from engine.remote.protocol import VERSION, LineSocket, decode, encode, line_to_wire
from engine.screen import line_text
from engine.states import SessionState as S
from tests.remote_support import attached, eventually, serving
from tests.support import running, wait_state

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

    from engine.engine import Engine
    from engine.remote.remote_engine import RemoteEngine

pytestmark = pytest.mark.anyio

CAP = 1000  # the deck's history cap: floods here go past it
POOL = f"size = 2\nwarm = 1\nscrollback = {CAP}"
DECK = """
[[session]]
name = "sh"
command = "PS1='$ ' exec bash --norc --noprofile"
cols = 80
rows = 20
"""
# Numbered, coloured (16, 256 and truecolor) lines, some wider than the screen.
FLOOD = (
    "for i in $(seq {first} {last}); do printf '\\033[3%dm%06d\\033[0m \\033[48;5;%dmrow\\033[0m"
    " \\033[38;2;9;%d;9m%0*d\\033[0m\\n' $((i % 8)) $i $((i % 256)) $((i % 256)) $((i % 150))"
    " 0; done; echo mark-$(({last}))\r"
)  # the needle `mark-N` shows once the loop is done, not in the command's own echo


async def _flood(remote: RemoteEngine, first: int, last: int) -> None:
    await eventually(lambda: remote.session_info("sh").state is S.ACTIVE)
    await remote.send_input("sh", FLOOD.format(first=first, last=last).encode())


async def _same_history(engine: Engine, remote: RemoteEngine, needle: str) -> None:
    """Wait until output stopped (the needle shows, the prompt follows) and the remote's
    fetched history equals the engine's at the same moment."""

    async def fetched_equal() -> bool:
        await remote.fetch_scrollback("sh")
        return remote.history("sh") == engine.history("sh")

    with anyio.fail_after(60):
        while not any(needle in line for line in engine.sessions["sh"].screen.text()):
            await anyio.sleep(0.05)
        while not await fetched_equal():
            await anyio.sleep(0.1)


async def test_an_attached_history_equals_the_engine_s_through_floods_clear_reset_and_resize(
    tmp_path: Path,
) -> None:
    async with (
        running(tmp_path, DECK, POOL) as engine,
        serving(engine) as server,
        attached(server) as remote,
    ):
        await _flood(remote, 1, 400)  # within the cap
        await _same_history(engine, remote, "mark-400")
        await _flood(remote, 401, 3400)  # past the cap: the copy falls behind what is kept
        await _same_history(engine, remote, "mark-3400")
        copy = remote._mirror.history["sh"]
        assert copy.first > 0, "the engine dropped its oldest lines, and so did the copy"
        texts = [line_text(line) for line in remote.history("sh")]
        assert "003400" in "".join(texts)
        assert not any(line.startswith("000001") for line in texts)
        await _flood(remote, 3401, 3450)  # a few more: appended to the copy
        await _same_history(engine, remote, "mark-3450")
        await remote.send_input("sh", b"printf '\\033[H\\033[2J\\033[3J'; echo clea''red\r")
        await _same_history(engine, remote, "cleared")
        await _flood(remote, 3451, 3700)
        await _same_history(engine, remote, "mark-3700")
        await remote.resize("sh", 50, 12, deliberate=True)  # avt's newest rows reflow
        await eventually(lambda: engine.sessions["sh"].screen.cols == 50)
        await remote.send_input("sh", b"echo resi''zed\r")
        await _same_history(engine, remote, "resized")
        await _flood(remote, 3701, 3900)
        await _same_history(engine, remote, "mark-3900")
        await remote.send_input("sh", b"printf '\\033[?1049h'; echo al''ternate\r")
        await _same_history(engine, remote, "alternate")
        assert len(remote.history("sh")) == 12  # the history is the screen alone
        await remote.send_input("sh", b"printf '\\033[?1049l'; echo pri''mary\r")
        await _same_history(engine, remote, "primary")  # and it is back
        await remote.send_input("sh", b"printf '\\033c'; echo re''set\r")  # RIS forgets it all
        await _same_history(engine, remote, "reset")
        await _flood(remote, 3901, 4000)
        await _same_history(engine, remote, "mark-4000")


@asynccontextmanager
async def _client(
    path: Path, protocol: int = VERSION
) -> AsyncIterator[Callable[..., Awaitable[dict[str, Any]]]]:
    """A bare socket client: `ask(op, **fields)` sends one request and returns its reply."""
    stream = LineSocket(await anyio.connect_unix(path))
    async with stream.stream:
        await stream.send(encode({"op": "hello", "req": 0, "protocol": protocol}))
        frames = stream.lines(1 << 26)
        try:
            assert decode(await anext(frames))["ok"]

            async def ask(op: str, **fields: Any) -> dict[str, Any]:
                await stream.send(encode({"op": op, "req": 7, "session": "sh", **fields}))
                async for line in frames:
                    if (frame := decode(line)).get("re") == 7:
                        return frame
                raise AssertionError("the server closed the connection")

            yield ask
        finally:
            await frames.aclose()


async def _flooded(engine: Engine, last: int) -> None:
    await wait_state(engine, "sh", S.ACTIVE)
    await engine.send_input("sh", FLOOD.format(first=1, last=last).encode())
    with anyio.fail_after(60):
        while not any(f"mark-{last}" in t for t in engine.sessions["sh"].screen.text()):
            await anyio.sleep(0.05)


async def test_history_since_sends_only_lines_from_the_index_asked_with_one_instant_s_tail(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, DECK, POOL) as engine, serving(engine) as server:
        await _flooded(engine, 600)
        async with _client(server.socket_path) as ask:
            whole = (await ask("history_since", start=0))["result"]
            assert set(whole) == {"first", "end", "start", "rows", "alternate", "lines", "tail"}
            assert (whole["first"], whole["start"], whole["rows"]) == (0, 0, 20)
            assert len(whole["lines"]) == whole["end"] > 0
            wire = [line_to_wire(line) for line in engine.history("sh")]
            assert whole["lines"] + whole["tail"] == wire
            assert not whole["alternate"]

            part = (await ask("history_since", start=100, count=10))["result"]
            assert (part["start"], part["lines"]) == (100, whole["lines"][100:110])
            assert part["end"] == whole["end"]  # not reached: the asker pages on
            copy = HistoryCopy()  # a copy paging in: nothing shown until it reaches `end`
            assert not copy.apply((await ask("history_since", start=0, count=100))["result"])
            assert copy.history() == []
            assert copy.apply((await ask("history_since", start=copy.end))["result"])
            assert copy.history() == engine.history("sh")
            done = (await ask("history_since", start=whole["end"]))["result"]
            assert done["lines"] == []
            assert done["tail"] == whole["tail"]


async def test_a_client_behind_the_kept_range_is_told_the_oldest_index_still_held(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, DECK, POOL) as engine, serving(engine) as server:
        await _flooded(engine, 300)
        async with _client(server.socket_path) as ask:
            copy = HistoryCopy()
            assert copy.apply((await ask("history_since", start=0))["result"])
            behind = copy.end
            await _flooded(engine, 3000)  # more than the cap since: all the copy holds is gone
            reply = (await ask("history_since", start=behind))["result"]
            assert reply["first"] > behind, reply["first"]
            assert reply["start"] == reply["first"]
            assert len(reply["lines"]) == reply["end"] - reply["first"] <= CAP
            assert copy.apply(reply)
            assert copy.first == reply["first"]
            assert copy.history() == engine.history("sh")


BAD: list[tuple[dict[str, Any], str, str]] = [  # fields, error type, what it says
    ({}, "ProtocolError", "history_since: field 'start' must be int"),
    ({"start": "0"}, "ProtocolError", "field 'start' must be int"),
    ({"start": -1}, "InvalidCommandError", "history start -1 is outside 0.."),
    ({"start": 10**9}, "InvalidCommandError", "history_since 'sh': history start 1000000000"),
    ({"start": 0, "count": 0}, "ProtocolError", "field 'count' must be an int in 1..10000"),
    ({"start": 0, "count": True}, "ProtocolError", "field 'count' must be an int"),
    ({"start": 0, "count": 10**6}, "ProtocolError", "got 1000000"),
    ({"start": 0, "session": "nope"}, "UnknownSessionError", "no session named 'nope'"),
]


async def test_a_bad_history_since_request_gets_an_error_naming_the_field(
    tmp_path: Path,
) -> None:
    async with (
        running(tmp_path, DECK, POOL) as engine,
        serving(engine) as server,
        _client(server.socket_path) as ask,
    ):
        for fields, error, says in BAD:
            reply = await ask("history_since", **fields)
            assert not reply["ok"], fields
            assert reply["error"]["type"] == error, fields
            assert says in reply["error"]["message"], reply["error"]["message"]


async def test_a_protocol_6_client_still_attaches_and_gets_the_whole_history(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, DECK, POOL) as engine, serving(engine) as server:
        await _flooded(engine, 300)
        async with _client(server.socket_path, protocol=6) as ask:
            result = (await ask("history"))["result"]
            assert result["rows"] == 20
            assert result["lines"] == [line_to_wire(line) for line in engine.history("sh")]


async def test_the_watched_session_s_prefetch_follows_it_onto_the_alternate_screen(
    tmp_path: Path,
) -> None:
    """What a pane shows when the operator scrolls back is the prefetched copy, taken
    before the scroll: on the alternate screen it is that screen alone, as in process."""
    async with (
        running(tmp_path, DECK, POOL) as engine,
        serving(engine) as server,
        attached(server) as remote,
    ):
        remote.watch_history("sh")
        await _flood(remote, 1, 100)
        copy = remote._copy("sh")
        await eventually(lambda: copy.history() == engine.history("sh"), timeout=30)
        await remote.send_input("sh", b"printf '\\033[?1049h'; echo al''ternate\r")
        screen = engine.sessions["sh"].screen
        await eventually(lambda: screen.alternate and "alternate" in "".join(screen.text()))
        await eventually(lambda: copy.history() == engine.history("sh"), timeout=30)
        assert len(copy.history()) == 20
