"""The web server behind `--web`: textual-serve's Server with tokens, roles, limits, audit.

Routes: `/?token=T` (the page), `/ws/T` (the websocket that drives one room) and
`/static/` (textual-serve's xterm.js bundle). A request whose token is missing or wrong
gets 403 before anything is spawned; a good token picks the role, and the role alone
picks the room's argv, so a viewer link can only ever start a viewer room (which the
engine refuses control anyway). There is no download route: a browser room offers no
file delivery. aiohttp runs in the caller's event loop (AppRunner + TCPSite).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp_jinja2
import anyio
import jinja2
from aiohttp import WSCloseCode, web
from textual_serve.server import Server, to_int

from tui.audit import WEB_AUDIT, AuditLog
from tui.web.room_process import RoomProcess
from tui.web.tokens import RoomTokens, write_links

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from tui.web.web_config import WebConfig

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).with_name("templates")
HEARTBEAT = 15.0


class WebRooms(Server):
    """Shared by every request: configuration, tokens, audit log, the rooms alive now."""

    def __init__(self, config: WebConfig, socket: Path, run_dir: Path, title: str) -> None:
        super().__init__("swarmdeck", config.host, config.port, title, templates_path=TEMPLATES)
        self.config, self.socket, self.run_dir = config, socket, run_dir
        self.tokens = RoomTokens(config.roles)
        self.audit = AuditLog(run_dir, WEB_AUDIT)
        self.rooms: set[RoomProcess] = set()
        self._sockets: set[web.WebSocketResponse] = set()
        self._closing = False

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[_private])
        aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(self.templates_path))
        app.add_routes([
            web.get("/", self.page),
            web.get("/ws/{token}", self.room_socket),
            web.static("/static", self.statics_path),
        ])  # fmt: skip
        return app

    # -- who may come in ---------------------------------------------------------------------
    def _role(self, request: web.Request, token: str | None, what: str) -> str:
        """The token's role, or 403 (audited) before anything else happens."""
        role = self.tokens.role_for(token)
        if role is None:
            reason = f"{what} without a token" if not token else f"{what} with a wrong token"
            self.audit.record("refused", _peer(request), reason=reason)
            raise web.HTTPForbidden(text="swarmdeck: this link has no valid token\n")
        return role

    async def page(self, request: web.Request) -> web.StreamResponse:
        token = request.query.get("token")
        role = self._role(request, token, "page")
        scheme = "wss" if request.secure else "ws"
        context = {
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": f"{scheme}://{request.host}/ws/{token}",
            "config": {"static": {"url": "/static/"}},
            "application": {"name": f"{self.title} · {role}"},
        }
        return aiohttp_jinja2.render_template("app_index.html", request, context)

    async def room_socket(self, request: web.Request) -> web.StreamResponse:
        role = self._role(request, request.match_info["token"], "websocket")
        self._check_origin(request, role)
        self._check_room(request, role)
        websocket = web.WebSocketResponse(heartbeat=HEARTBEAT)

        async def close() -> None:
            await websocket.close()

        room = RoomProcess(
            self._argv(role), {"SWARMDECK_ROLE": role}, grace=self.config.grace,
            write_bytes=websocket.send_bytes, write_str=websocket.send_str,
            close=close, download_manager=self.download_manager,
        )  # fmt: skip
        self.rooms.add(room)  # counted before the first await: the limit holds under a rush
        self._sockets.add(websocket)
        record = _recorder(self.audit, _peer(request), role, room.app_service_id)
        try:
            await websocket.prepare(request)
            record("connect", user_agent=request.headers.get("User-Agent", "")[:200])
            await self._drive(request, websocket, room, record)
        finally:
            self.rooms.discard(room)
            self._sockets.discard(websocket)
        return websocket

    def _check_origin(self, request: web.Request, role: str) -> None:
        """Browsers always send Origin on a websocket: another site's page may not drive
        a room even if it learnt a link."""
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != request.host:
            reason = f"websocket from another origin ({origin[:100]})"
            self.audit.record("refused", _peer(request), role=role, reason=reason)
            raise web.HTTPForbidden(text="swarmdeck: cross-origin websocket\n")

    def _check_room(self, request: web.Request, role: str) -> None:
        limit = self.config.max_clients
        reason = "server stopping" if self._closing else None
        if len(self.rooms) >= limit:
            reason = f"too many browser rooms (limit {limit})"
        if reason is not None:
            self.audit.record("refused", _peer(request), role=role, reason=reason)
            raise web.HTTPServiceUnavailable(text=f"swarmdeck: {reason}\n")

    def _argv(self, role: str) -> list[str]:
        return [sys.executable, "-m", "tui.web.room", str(self.socket), "--role", role]

    # -- one room ------------------------------------------------------------------------
    async def _drive(
        self,
        request: web.Request,
        websocket: web.WebSocketResponse,
        room: RoomProcess,
        record: Callable[..., None],
    ) -> None:
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        reason = "browser closed"
        try:
            await room.start(width, height)
            record("child-started", pid=room.pid, size=[width, height])
            await self._process_messages(websocket, room)
            if room.ended or self._closing:
                reason = "server stopping" if self._closing else "room ended"
        except Exception as exc:  # a malformed message, a room that would not start
            log.warning("browser room: %r", exc)
            reason = f"error: {exc!r}"[:200]
        finally:
            with anyio.CancelScope(shield=True):
                await room.stop()
                await websocket.close()
            if room.status is not None:
                record("child-exited", status=room.status)
            record("disconnect", reason=reason)

    async def close(self) -> None:
        """Close every websocket and stop every room (each bounded by `grace`)."""
        self._closing = True
        for websocket in list(self._sockets):
            await websocket.close(code=WSCloseCode.GOING_AWAY, message=b"swarmdeck stopped")
        async with anyio.create_task_group() as tg:
            for room in list(self.rooms):
                tg.start_soon(room.stop)


def _recorder(audit: AuditLog, peer: str, role: str, room: str) -> Callable[..., None]:
    def record(event: str, **fields: object) -> None:
        audit.record(event, peer, role=role, room=room, **fields)

    return record


def _peer(request: web.Request) -> str:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return f"{peer[0]}:{peer[1]}" if peer else "?"


@web.middleware
async def _private(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """The page carries a token: never cached, never sent on as a referrer."""
    response = await handler(request)
    if not response.prepared:
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
    return response


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@asynccontextmanager
async def open_web_server(
    config: WebConfig, socket: Path, run_dir: Path, title: str
) -> AsyncIterator[tuple[WebRooms, dict[str, str], Path]]:
    """Listen for the block; yields the server, a link per role and the 0600 file that
    holds them. On exit every room is stopped and the links file removed; the engine is
    untouched."""
    rooms = WebRooms(config, socket, run_dir, title)
    runner = web.AppRunner(rooms.make_app(), access_log=None, handle_signals=False,
                           shutdown_timeout=config.grace + 1)  # fmt: skip
    await runner.setup()
    where = f"{config.host}:{config.port}"
    links_file = run_dir / f"web-links-{config.port}.json"
    try:
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        port = runner.addresses[0][1]
        where = f"{url_host(config.host)}:{port}"
        links = rooms.tokens.links(f"http://{where}")
        links_file = run_dir / f"web-links-{port}.json"
        write_links(links_file, links)
        rooms.audit.record("listening", where, roles=list(config.roles),
                           max_clients=config.max_clients)  # fmt: skip
        yield rooms, links, links_file
    finally:
        with anyio.CancelScope(shield=True):
            await rooms.close()
            await runner.cleanup()
            with contextlib.suppress(FileNotFoundError):
                links_file.unlink()
            rooms.audit.record("stopped", where)
