"""One browser room: a control-room process under Textual's WebDriver, on pipes.

textual-serve's AppService speaks the WebDriver's packet protocol over the child's stdin
and stdout; this subclass decides what runs (argv, never a shell: the role is an argument
the server chose), isolates it from the terminal's signals (its own session), closes the
websocket when the room ends by itself, and bounds the end: a room that has not quit
`grace` seconds after being asked is killed, and always reaped.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from typing import TYPE_CHECKING

from textual_serve.app_service import AppService

if TYPE_CHECKING:
    from asyncio.subprocess import Process
    from collections.abc import Awaitable, Callable, Mapping, Sequence

    from textual_serve.download_manager import DownloadManager


class RoomProcess(AppService):
    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        grace: float,
        write_bytes: Callable[[bytes], Awaitable[None]],
        write_str: Callable[[str], Awaitable[None]],
        close: Callable[[], Awaitable[None]],
        download_manager: DownloadManager,
    ) -> None:
        super().__init__(
            shlex.join(argv), write_bytes=write_bytes, write_str=write_str, close=close,
            download_manager=download_manager,
        )  # fmt: skip
        self._argv, self._env, self._grace = list(argv), dict(env), grace
        self.exited = asyncio.Event()
        self._stopping = asyncio.Lock()

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    @property
    def ended(self) -> bool:
        """The room's output ended: it quit (or died) by itself."""
        return self._task is not None and self._task.done()

    @property
    def status(self) -> int | None:
        """Exit status once reaped (negative: killed by that signal)."""
        return None if self._process is None else self._process.returncode

    async def _open_app_process(self, width: int = 80, height: int = 24) -> Process:
        env = {**self._build_environment(width, height), **self._env}
        self._process = process = await asyncio.create_subprocess_exec(
            *self._argv, env=env, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # a ^C to `serve` must not kill the rooms before it does
        )  # fmt: skip
        assert process.stdin is not None
        self._stdin = process.stdin
        return process

    async def run(self) -> None:
        """Pump until the room's stdout ends; then the browser is told the room is over."""
        try:
            await super().run()
        finally:
            with contextlib.suppress(Exception):
                await self.remote_close()

    async def stop(self) -> None:
        """Ask the room to quit (the WebDriver's quit packet), SIGKILL it after `grace`,
        and reap it. Idempotent; bounded even if the room ignores everything."""
        async with self._stopping:
            await self._stop()

    async def _stop(self) -> None:
        process, task = self._process, self._task
        if process is None or self.exited.is_set():
            return
        if task is not None and not task.done():
            with contextlib.suppress(Exception):
                await self.send_meta({"type": "quit"})
            done, _ = await asyncio.wait({task}, timeout=self._grace)
            if not done:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        with contextlib.suppress(ProcessLookupError):
            if process.returncode is None:
                try:
                    await asyncio.wait_for(process.wait(), self._grace)
                except TimeoutError:
                    process.kill()
        await process.wait()
        if task is not None:
            await task
        if self._stdin is not None:
            self._stdin.close()
        self._task = None
        self.exited.set()
