"""`serve --web` in a real headless Chromium: tokens, roles, refusals, pause and resume.

Each browser room is `python -m tui.web.room SOCKET --role ROLE`. The test watches the
engine through its own control connection, the page through its own xterm.js buffer
(tests/web_support.py) and the server's children through /proc, so what it checks is
what the engine, the browser and the kernel did.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, TypeVar

import aiohttp
import anyio
import pytest

from engine.events import ClientAttached, CommandRefused
from engine.remote.remote_engine import open_remote_engine
from engine.remote.remote_errors import NotPermittedError
from engine.states import SessionState as S
from tests.remote_support import eventually
from tests.web_support import (
    CHROMIUM,
    attached_web,
    open_browser,
    open_room,
    wait_room_shows,
    web_served,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from anyio.streams.memory import MemoryObjectReceiveStream
    from playwright.async_api import Page

    from engine.events import Event
    from tests.web_support import WebServed

T = TypeVar("T")
pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason="needs Debian's chromium (scripts/check installs it)"
    ),
]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[WebServed]:
    with web_served(tmp_path) as served:
        yield served


async def _room_attached(events: MemoryObjectReceiveStream[Event]) -> ClientAttached:
    """The next browser room's hello, as the engine recorded it."""
    with anyio.fail_after(30):
        async for event in events:
            if isinstance(event, ClientAttached) and event.name.startswith("browser room"):
                return event
    raise AssertionError("no browser room attached")


async def _next(events: MemoryObjectReceiveStream[Event], kind: type[T]) -> T:
    with anyio.fail_after(10):
        async for event in events:
            if isinstance(event, kind):
                return event
    raise AssertionError(f"no {kind.__name__}")


def _ticks(text: str) -> int:
    return max((int(n) for n in re.findall(r"tick-(\d+)", text)), default=0)


async def _press(page: Page, *keys: str) -> None:
    await page.focus(".xterm-helper-textarea")  # xterm.js's key input (a click would also
    # reach the room as a mouse click, and a click on a pane means "type into it")
    for key in keys:
        await page.keyboard.press(key)


async def test_the_operator_link_loads_a_room_whose_panes_show_live_output(
    served: WebServed,
) -> None:
    async with open_remote_engine(served.socket, "viewer", client="observer") as engine:
        with engine.subscribe() as events:
            async with open_browser() as browser:
                page = await open_room(browser, served.links["operator"])
                assert (await _room_attached(events)).role == "operator"
                first = _ticks(await wait_room_shows(page, "ticker", "active", "tick-"))
                await wait_room_shows(page, f"tick-{first + 3}")  # the pane keeps up
                assert len(served.rooms()) == 1
                await page.close()
                await eventually(lambda: not served.rooms())
    events_seen = [e["event"] for e in served.audit()]
    assert events_seen[:3] == ["listening", "connect", "child-started"]
    assert {"child-exited", "disconnect"} <= set(events_seen)
    connect = next(e for e in served.audit() if e["event"] == "connect")
    assert connect["role"] == "operator"
    assert "HeadlessChrome" in connect["user_agent"]


async def test_an_operator_pauses_and_resumes_a_session_from_the_browser(
    served: WebServed,
) -> None:
    async with open_remote_engine(served.socket, "viewer", client="observer") as engine:
        await eventually(lambda: engine.session_info("ticker").state is S.ACTIVE)
        async with open_browser() as browser:
            page = await open_room(browser, served.links["operator"])
            await wait_room_shows(page, "ticker", "tick-")
            await _press(page, "p")
            await eventually(lambda: engine.session_info("ticker").state is S.PAUSED, 20)
            await wait_room_shows(page, "paused")
            await _press(page, "r")
            await eventually(lambda: engine.session_info("ticker").state is S.ACTIVE, 20)


async def test_a_viewer_link_attaches_read_only_and_the_engine_refuses_its_control(
    served: WebServed,
) -> None:
    async with open_remote_engine(served.socket, "viewer", client="observer") as engine:
        await eventually(lambda: engine.session_info("ticker").state is S.ACTIVE)
        with engine.subscribe() as events:
            async with open_browser() as browser:
                link = served.links["viewer"] + "&role=operator"  # asking changes nothing
                page = await open_room(browser, link)
                attached = await _room_attached(events)
                assert attached.role == "viewer"
                await wait_room_shows(page, "READ-ONLY", "tick-")
                await _press(page, "p", "t", "Enter", "x", "Enter")
                await anyio.sleep(1)
                assert engine.session_info("ticker").state is S.ACTIVE
                async with open_remote_engine(
                    served.socket, attached.role, client="as room"
                ) as same:
                    with pytest.raises(NotPermittedError):
                        await same.pause("ticker")  # what a modified room would get
                refused = await _next(events, CommandRefused)
    assert (refused.role, refused.command, refused.code) == ("viewer", "pause", "not-permitted")
    assert engine.session_info("ticker").state is S.ACTIVE
    roles = {e["role"] for e in served.audit() if e["event"] == "child-started"}
    assert roles == {"viewer"}


async def test_requests_without_a_valid_token_get_403_and_spawn_nothing(
    served: WebServed,
) -> None:
    base = served.base
    async with open_browser() as browser:
        page = await browser.new_page()
        for url in (f"{base}/", f"{base}/?token=", f"{base}/?token=not-a-token"):
            response = await page.goto(url)
            assert response is not None
            assert response.status == 403
            assert "no valid token" in await response.text()
    ws = base.replace("http:", "ws:")
    operator = served.links["operator"].split("token=")[1]
    async with aiohttp.ClientSession() as client:
        elsewhere = {"Origin": "http://elsewhere.test"}
        for url, headers in [
            (f"{ws}/ws/not-a-token", {}), (f"{ws}/ws/", {}), (f"{ws}/ws/{operator}", elsewhere),
        ]:  # fmt: skip
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await client.ws_connect(url, headers=headers)
            assert refused.value.status in (403, 404)
    assert not served.rooms()
    audit = served.audit()
    assert not any(e["event"] in ("connect", "child-started") for e in audit)
    reasons = [e["reason"] for e in audit if e["event"] == "refused"]
    assert reasons == [
        "page without a token",
        "page without a token",
        "page with a wrong token",
        "websocket with a wrong token",
        "websocket from another origin (http://elsewhere.test)",
    ]


async def test_rooms_beyond_the_limit_are_refused_and_a_closed_socket_ends_its_room(
    tmp_path: Path,
) -> None:
    with web_served(tmp_path, "--web-max-clients", "1") as served:
        ws = served.base.replace("http:", "ws:")
        token = served.links["viewer"].split("token=")[1]
        async with aiohttp.ClientSession() as client:
            first = await client.ws_connect(f"{ws}/ws/{token}?width=80&height=24")
            await eventually(lambda: len(served.rooms()) == 1, 20)
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await client.ws_connect(f"{ws}/ws/{token}")
            assert refused.value.status == 503
            await first.close()
            await eventually(lambda: not served.rooms(), 20)
        reasons = [e["reason"] for e in served.audit() if e["event"] == "refused"]
        assert reasons == ["too many browser rooms (limit 1)"]
        await eventually(lambda: any(e["event"] == "child-exited" for e in served.audit()))
        assert served.links_file.stat().st_mode & 0o777 == 0o600
    assert not served.links_file.exists()  # the tokens die with the server


async def test_attach_web_as_viewer_serves_viewer_links_only_for_an_engine_served_elsewhere(
    served: WebServed,
) -> None:
    with attached_web(served, "--viewer") as (links, links_file):
        assert links.keys() == {"viewer"}
        assert links_file.parent == served.run_dir
        ws = links["viewer"].replace("http:", "ws:").replace("/?token=", "/ws/")
        async with (
            open_remote_engine(served.socket, "viewer", client="observer") as engine,
            aiohttp.ClientSession() as client,
        ):
            with engine.subscribe() as events:
                room = await client.ws_connect(f"{ws}?width=100&height=30")
                assert (await _room_attached(events)).role == "viewer"
                await room.close()
    assert not links_file.exists()
