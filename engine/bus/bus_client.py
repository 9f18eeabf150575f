"""Python clients for processes inside sessions: `BusClient` (blocking) and `AsyncBusClient`.

Both read SWARMDECK_BUS (socket path), SWARMDECK_SESSION and SWARMDECK_BUS_TOKEN from the
environment by default (SWARMDECK_BUS_ERROR, set on a host whose sshd would not forward the
bus, says why there is none), speak the protocol of docs/protocol.md and raise the `BusError`
subclass named by an error frame's code. Stdlib only, and asyncio is imported only by the
async client, so `swarmdeck bus …` stays fast to start.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
from collections import deque
from typing import TYPE_CHECKING, Any

from engine.bus.bus_errors import BusClosedError, BusError, error_for

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Iterator

Message = dict[str, Any]


class NoBusError(BusError):
    """No bus to talk to: not inside a session, or the engine is gone."""

    code = "no-bus"


def _credentials(path: str | None, session: str | None, token: str | None) -> tuple[str, str, str]:
    problem = os.environ.get("SWARMDECK_BUS_ERROR")  # a session on a host without the bus
    if problem and path is None:
        raise NoBusError(f"no bus: {problem}")
    path = path or os.environ.get("SWARMDECK_BUS")
    session = session or os.environ.get("SWARMDECK_SESSION")
    token = token or os.environ.get("SWARMDECK_BUS_TOKEN")
    if not (path and session and token):
        raise NoBusError(
            "no bus: SWARMDECK_BUS, SWARMDECK_SESSION and SWARMDECK_BUS_TOKEN are set only "
            "inside a swarmdeck session"
        )
    return path, session, token


def _result(frame: Message) -> Message:
    if frame.get("ok"):
        return frame
    error = frame.get("error") or {}
    raise error_for(str(error.get("code", "bus-error")), str(error.get("message", frame)))


def _options(reliable: bool, priority: str, ttl: float | None) -> Message:
    options: Message = {"reliable": reliable, "priority": priority}
    if ttl is not None:
        options["ttl"] = ttl
    return options


class BusClient:
    """One blocking connection; pushed messages (subscriptions) wait in `pending`."""

    def __init__(
        self, path: str | None = None, session: str | None = None, token: str | None = None
    ) -> None:
        path, self.session, token = _credentials(path, session, token)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.connect(path)
        except OSError as exc:
            self._sock.close()
            raise NoBusError(f"cannot reach the bus at {path}: {exc.strerror}") from None
        self._file = self._sock.makefile("rb")
        self._ids = itertools.count(1)
        self.pending: deque[Message] = deque()
        self.dropped = 0
        """Messages the bus dropped for this client's subscriptions (it read too slowly)."""
        self.call("hello", session=self.session, token=token)

    def close(self) -> None:
        self._file.close()
        self._sock.close()

    def __enter__(self) -> BusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self) -> Message:
        line = self._file.readline()
        if not line:
            raise BusClosedError("the bus closed the connection (engine stopped?)")
        frame: Message = json.loads(line)
        return frame

    def send_frame(self, frame: Message) -> None:
        self._sock.sendall(json.dumps(frame, separators=(",", ":")).encode() + b"\n")

    def call(self, op: str, **fields: Any) -> Message:
        """Send one command and wait for its reply; raises the error it gets."""
        req = next(self._ids)
        self.send_frame({"op": op, "req": req, **fields})
        while True:
            frame = self._read()
            if "msg" in frame or "dropped" in frame:  # pushed by a subscription
                self.pending.append(frame)
            elif frame.get("re") == req or frame.get("re") is None:
                return _result(frame)

    def publish(
        self, topic: str, payload: Any, *, reliable: bool = False, priority: str = "normal",
        ttl: float | None = None,
    ) -> str:  # fmt: skip
        return str(self.call("publish", topic=topic, payload=payload,
                             **_options(reliable, priority, ttl))["id"])  # fmt: skip

    def publish_nowait(self, topic: str, payload: Any) -> None:
        """Best-effort, no reply unless it fails (`quiet`): the fastest way to publish."""
        self.send_frame({"op": "publish", "topic": topic, "payload": payload, "quiet": True})

    def send(
        self, to: str, payload: Any, *, reliable: bool = False, priority: str = "normal",
        ttl: float | None = None,
    ) -> str:  # fmt: skip
        return str(self.call("send", to=to, payload=payload,
                             **_options(reliable, priority, ttl))["id"])  # fmt: skip

    def broadcast(
        self, payload: Any, *, reliable: bool = False, priority: str = "normal",
        ttl: float | None = None,
    ) -> int:  # fmt: skip
        return int(self.call("broadcast", payload=payload,
                             **_options(reliable, priority, ttl))["delivered"])  # fmt: skip

    def push(
        self, queue: str, payload: Any, *, reliable: bool = False, priority: str = "normal",
        ttl: float | None = None, delay: float = 0.0,
    ) -> str:  # fmt: skip
        return str(self.call("queue.push", queue=queue, payload=payload, delay=delay,
                             **_options(reliable, priority, ttl))["id"])  # fmt: skip

    def pop(self, queue: str, *, wait: float | None = None, ack: bool = False) -> Message:
        return dict(self.call("queue.pop", queue=queue, wait=wait, ack=ack)["message"])

    def recv(self, *, wait: float | None = None, ack: bool = False) -> Message:
        return dict(self.call("recv", wait=wait, ack=ack)["message"])

    def ack(self, msg_id: str) -> None:
        self.call("ack", id=msg_id)

    def request(self, topic: str, payload: Any, *, timeout: float = 10.0) -> Message:
        return dict(self.call("request", topic=topic, payload=payload, timeout=timeout)["message"])

    def reply(self, msg_id: str, payload: Any) -> str:
        return str(self.call("reply", id=msg_id, payload=payload)["id"])

    def subscribe(
        self, pattern: str, *, count: int | None = None, ack: bool = True
    ) -> Iterator[Message]:
        """Yield messages as they come (reliable ones acked after the consumer resumes us)."""
        sub = self.call("subscribe", pattern=pattern, count=count)["sub"]
        seen = 0
        while count is None or seen < count:
            frame = self.pending.popleft() if self.pending else self._read()
            if frame.get("sub") != sub:
                continue
            if "dropped" in frame:
                self.dropped += int(frame["dropped"])
                continue
            message = dict(frame["msg"], attempt=frame.get("attempt", 1))
            seen += 1
            yield message
            if ack and message.get("reliability") == "reliable":
                self.ack(message["id"])


class AsyncBusClient:
    """The same protocol on asyncio streams; `messages` receives subscription pushes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import asyncio

        self._reader, self._writer = reader, writer
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Message]] = {}
        self.messages: asyncio.Queue[Message] = asyncio.Queue()
        self.dropped = 0
        """Messages the bus dropped for this client's subscriptions (it read too slowly)."""
        self._task = asyncio.get_running_loop().create_task(self._read_loop())

    @classmethod
    async def connect(
        cls, path: str | None = None, session: str | None = None, token: str | None = None
    ) -> AsyncBusClient:
        import asyncio

        path, session, token = _credentials(path, session, token)
        try:
            reader, writer = await asyncio.open_unix_connection(path, limit=1 << 20)
        except OSError as exc:
            raise NoBusError(f"cannot reach the bus at {path}: {exc.strerror}") from None
        client = cls(reader, writer)
        await client.call("hello", session=session, token=token)
        return client

    async def _read_loop(self) -> None:
        try:
            while line := await self._reader.readline():
                frame = json.loads(line)
                if "msg" in frame:
                    self.messages.put_nowait(dict(frame["msg"], attempt=frame.get("attempt", 1)))
                elif "dropped" in frame:
                    self.dropped += int(frame["dropped"])
                elif (future := self._waiting.pop(frame.get("re"), None)) and not future.done():
                    future.set_result(frame)  # not done: its caller may have been cancelled
        finally:
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(BusClosedError("the bus closed the connection"))

    async def call(self, op: str, **fields: Any) -> Message:
        """Send one command and wait for its reply; raises the error it gets."""
        import asyncio

        req = next(self._ids)
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiting[req] = future
        try:
            self._writer.write(json.dumps({"op": op, "req": req, **fields}).encode() + b"\n")
            await self._writer.drain()
            return _result(await future)
        finally:  # cancelled or not, a late reply must find nothing to resolve
            self._waiting.pop(req, None)

    async def publish(
        self, topic: str, payload: Any, *, reliable: bool = False, priority: str = "normal",
        ttl: float | None = None,
    ) -> str:  # fmt: skip
        return str((await self.call("publish", topic=topic, payload=payload,
                                    **_options(reliable, priority, ttl)))["id"])  # fmt: skip

    async def send(
        self, to: str, payload: Any, *, reliable: bool = False, priority: str = "normal",
        ttl: float | None = None,
    ) -> str:  # fmt: skip
        return str((await self.call("send", to=to, payload=payload,
                                    **_options(reliable, priority, ttl)))["id"])  # fmt: skip

    async def broadcast(
        self, payload: Any, *, reliable: bool = False, priority: str = "normal",
        ttl: float | None = None,
    ) -> int:  # fmt: skip
        return int((await self.call("broadcast", payload=payload,
                                    **_options(reliable, priority, ttl)))["delivered"])  # fmt: skip

    async def push(
        self, queue: str, payload: Any, *, reliable: bool = False, priority: str = "normal",
        ttl: float | None = None, delay: float = 0.0,
    ) -> str:  # fmt: skip
        return str((await self.call("queue.push", queue=queue, payload=payload, delay=delay,
                                    **_options(reliable, priority, ttl)))["id"])  # fmt: skip

    async def pop(self, queue: str, *, wait: float | None = None, ack: bool = False) -> Message:
        return dict((await self.call("queue.pop", queue=queue, wait=wait, ack=ack))["message"])

    async def recv(self, *, wait: float | None = None, ack: bool = False) -> Message:
        return dict((await self.call("recv", wait=wait, ack=ack))["message"])

    async def request(self, topic: str, payload: Any, *, timeout: float = 10.0) -> Message:
        reply = await self.call("request", topic=topic, payload=payload, timeout=timeout)
        return dict(reply["message"])

    async def reply(self, msg_id: str, payload: Any) -> str:
        return str((await self.call("reply", id=msg_id, payload=payload))["id"])

    async def subscribe(self, pattern: str, *, count: int | None = None) -> int:
        return int((await self.call("subscribe", pattern=pattern, count=count))["sub"])

    async def ack(self, msg_id: str) -> None:
        await self.call("ack", id=msg_id)

    async def aclose(self) -> None:
        self._writer.close()
        self._task.cancel()
        import contextlib

        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
