"""The control socket under a flood of idle connections (issue 20, item 2): capped, each
refused client told why, the engine serving its clients meanwhile."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import anyio
import pytest

from engine.remote.control_server import open_control_server
from tests.adversarial.support import Raw
from tests.support import running

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio
IDLE = """
[[session]]
name = "a"
command = "sleep 30"
"""


async def test_idle_control_connections_past_the_cap_are_turned_away(tmp_path: Path) -> None:
    async with (
        running(tmp_path, IDLE) as engine,
        open_control_server(engine, tmp_path / "control.sock") as server,
    ):
        server.gate.unauthenticated = 3
        path = str(tmp_path / "control.sock")

        def flood() -> str:
            idle = [Raw(path) for _ in range(3)]
            over = Raw(path)
            refusal = over.read()
            over.close()
            for client in idle:
                client.close()
            return json.dumps(refusal)

        refusal = await anyio.to_thread.run_sync(flood)
        assert "TooManyClientsError" in refusal
        assert "waiting for their hello (3)" in refusal
        assert server.gate.refused == 1
