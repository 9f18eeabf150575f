"""A client's name in hello is shown to every other client, so it must be short printable
text (issue 20 item 5: a 1 MB name was broadcast and disconnected a bystander)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import pytest

from engine.events import ClientAttached
from engine.remote.protocol import MAX_CLIENT_NAME, VERSION, LineSocket, decode, encode
from engine.states import SessionState as S
from tests.remote_support import attached, eventually, serving
from tests.support import running

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio
DECK = '[[session]]\nname = "quiet"\ncommand = "exec sleep 60"\n'


async def _hello(path: Path, name: str) -> dict[str, Any]:
    stream = LineSocket(await anyio.connect_unix(path))
    async with stream.stream:
        hello = {"op": "hello", "req": 0, "protocol": VERSION, "client": name}
        await stream.send(encode(hello))
        return decode(await anext(stream.lines(1 << 26)))


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("x" * (1 << 20), f"client name of {1 << 20} characters, at most {MAX_CLIENT_NAME}"),
        ("evil\x1b]2;pwned\x07", "client name must be printable text"),
    ],
    ids=["1 MB", "escape sequence"],
)
async def test_a_hello_with_a_huge_or_unprintable_name_is_refused_and_nobody_sees_it(
    tmp_path: Path, name: str, why: str
) -> None:
    async with (
        running(tmp_path, DECK) as engine,
        serving(engine) as server,
        attached(server, "viewer") as bystander,
    ):
        await eventually(lambda: bystander.session_info("quiet").state is S.ACTIVE)
        with bystander.subscribe() as events:
            reply = await _hello(server.socket_path, name)
            assert reply["ok"] is False
            assert reply["error"]["type"] == "ProtocolError"
            assert why in reply["error"]["message"]
            assert await _hello(server.socket_path, "fine name")  # the next one is let in
            with anyio.fail_after(10):
                names = await _attached_names(events, until="fine name")
        assert name not in names
        assert bystander.session_info("quiet").state is S.ACTIVE  # still connected


async def _attached_names(events: Any, until: str) -> list[str]:
    """The names of clients attached, up to and including `until`."""
    names = []
    async for event in events:
        if isinstance(event, ClientAttached):
            names.append(event.name)
            if event.name == until:
                return names
    raise AssertionError(f"{until!r} never attached")
