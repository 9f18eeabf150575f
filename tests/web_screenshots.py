"""`python -m tests.web_screenshots DIR`: the browser room as an operator and as a viewer,
photographed by the same Chromium and harness as tests/test_web.py (scripts/screenshots)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import anyio

from tests.web_support import open_browser, open_room, wait_room_shows, web_served

DECK = """
[pool]
size = 3
warm = 3

[[session]]
name = "api"
command = "i=0; while :; do i=$((i+1)); echo \\"GET /health 200 ${i}ms\\"; sleep 0.5; done"

[[session]]
name = "tests"
command = "for i in $(seq 1 40); do echo \\"test_case_$i PASSED\\"; sleep 0.2; done; exec sleep 600"

[[session]]
name = "ticker"
command = "i=0; while :; do i=$((i+1)); echo tick-$i; sleep 0.3; done"
"""


async def _shoot(directory: Path) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="sd-shots-") as tmp,
        web_served(Path(tmp), deck=DECK) as served,
    ):
        async with open_browser() as browser:
            for role in ("operator", "viewer"):
                page = await open_room(browser, served.links[role])
                await wait_room_shows(page, "test_case_30", "GET /health", "tick-")
                await anyio.sleep(1)  # let the notification and sparklines settle
                await page.screenshot(path=str(directory / f"web-{role}.png"))
                await page.close()
                print(directory / f"web-{role}.png")


if __name__ == "__main__":
    anyio.run(_shoot, Path(sys.argv[1] if len(sys.argv) > 1 else "screenshots"))
