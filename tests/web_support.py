"""A `swarmdeck serve --web` process, and Debian's Chromium driven through Playwright.

The browser reads what it shows from its own xterm.js: an init script keeps every object
assigned to a `terminal` property (textual-serve's page holds its xterm.js Terminal
there), and `room_text` reads that terminal's buffer, i.e. what the page has drawn.
Requests to anything but loopback are aborted, so a page can never reach the network.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
from playwright.async_api import async_playwright

from tests.remote_support import ROOT, short_dir

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from typing import IO

    from playwright.async_api import BrowserContext, Page, Route

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
TICKER_DECK = """
[pool]
size = 2
warm = 1

[[session]]
name = "ticker"
command = "i=0; while :; do i=$((i+1)); echo tick-$i; sleep 0.3; done"
"""
_KEEP_TERMINALS = """
Object.defineProperty(Object.prototype, "terminal", {
  configurable: true,
  get() { return undefined; },
  set(value) {
    Object.defineProperty(this, "terminal", {value, writable: true, configurable: true});
    (window.__terminals = window.__terminals || []).push(value);
  },
});
"""
_READ_TERMINAL = """() => {
  const term = (window.__terminals || []).find((t) => t && t.buffer && t.buffer.active);
  if (!term) return null;
  const buffer = term.buffer.active, rows = [];
  for (let y = 0; y < buffer.length; y++) rows.push(buffer.getLine(y).translateToString(true));
  return rows.join("\\n");
}"""


@dataclass(frozen=True)
class WebServed:
    socket: Path
    links: dict[str, str]
    links_file: Path
    run_dir: Path
    process: subprocess.Popen[str]

    @property
    def base(self) -> str:
        return self.links["operator"].split("/?", 1)[0]

    def audit(self) -> list[dict[str, Any]]:
        path = self.run_dir / "web-audit.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def rooms(self) -> list[int]:
        """Pids of the server's children that are browser rooms."""
        found = []
        with open(f"/proc/{self.process.pid}/task/{self.process.pid}/children") as file:
            for pid in file.read().split():
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if b"tui.web.room" in cmdline:
                    found.append(int(pid))
        return found


@contextmanager
def web_served(tmp_path: Path, *options: str, deck: str = TICKER_DECK) -> Iterator[WebServed]:
    """Serve the deck with --web on a free loopback port; SIGTERM at the end."""
    (tmp_path / "web.toml").write_text(deck)
    with short_dir() as runtime:
        env = {**os.environ, "SWARMDECK_RUNTIME_DIR": str(runtime)}
        deck_path, run_dir = str(tmp_path / "web.toml"), str(tmp_path / "run")
        command = [sys.executable, "-m", "tui.cli", "serve", deck_path,
                   "--run-dir", run_dir, "--web", "127.0.0.1:0", *options]  # fmt: skip
        server = subprocess.Popen(command, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE)
        assert server.stdout is not None
        try:
            serving = server.stdout.readline()
            socket = Path(serving.rsplit(" on ", 1)[1].strip())
            links, links_file = read_links(server.stdout)
            yield WebServed(socket, links, links_file, tmp_path / "run", server)
        finally:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
            server.wait(30)
            server.stdout.close()


@contextmanager
def attached_web(served: WebServed, *options: str) -> Iterator[tuple[dict[str, str], Path]]:
    """`swarmdeck attach SOCKET --web 127.0.0.1:0 ...`: its links and links file; it must
    end cleanly (status 0) on SIGTERM."""
    env = {**os.environ, "SWARMDECK_RUNTIME_DIR": str(served.socket.parent)}
    command = [sys.executable, "-m", "tui.cli", "attach", str(served.socket), *options,
               "--web", "127.0.0.1:0"]  # fmt: skip
    attach = subprocess.Popen(command, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE)
    assert attach.stdout is not None
    try:
        yield read_links(attach.stdout)
    finally:
        attach.send_signal(signal.SIGTERM)
        status = attach.wait(30)
        attach.stdout.close()
    assert status == 0


async def _loopback_only(route: Route) -> None:
    host = urlsplit(route.request.url).hostname
    if host in ("127.0.0.1", "localhost", "::1"):
        await route.continue_()
    else:
        await route.abort()


@asynccontextmanager
async def open_browser() -> AsyncIterator[BrowserContext]:
    """Headless Chromium with a fresh profile (never a browser Playwright downloads)."""
    with tempfile.TemporaryDirectory(prefix="sd-chromium-") as profile:
        async with async_playwright() as playwright:
            context = await playwright.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
                viewport={"width": 1280, "height": 800},
            )  # fmt: skip
            try:
                await context.route("**/*", _loopback_only)
                await context.add_init_script(_KEEP_TERMINALS)
                yield context
            finally:
                await context.close()


async def open_room(context: BrowserContext, link: str) -> Page:
    page = await context.new_page()
    response = await page.goto(link)
    assert response is not None
    assert response.status == 200, await response.text()
    return page


async def room_text(page: Page) -> str:
    """Every row the page's terminal holds, as text."""
    text = await page.evaluate(_READ_TERMINAL)
    return text if isinstance(text, str) else ""


async def wait_room_shows(page: Page, *needles: str, timeout: float = 30) -> str:
    with anyio.fail_after(timeout):
        while True:
            text = await room_text(page)
            if all(needle in text for needle in needles):
                return text
            await anyio.sleep(0.1)


def read_links(stdout: IO[str]) -> tuple[dict[str, str], Path]:
    """The `--web` banner: `web on URL`, one `ROLE: LINK` line per role, the links file."""
    links: dict[str, str] = {}
    while True:
        line = stdout.readline()
        assert line, "the server ended before printing its links"
        if "links also in" in line:
            return links, Path(line.split(" in ", 1)[1].split(" (mode")[0])
        role, _, link = line.strip().partition(": ")
        if link.strip().startswith("http://"):
            links[role] = link.strip()
