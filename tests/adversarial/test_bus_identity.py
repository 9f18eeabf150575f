"""Attacks on who is who on the bus (issue 20, item 8): a session that read another's token
(any process of the user can, from /proc/PID/environ) must not speak as it; a session must
not list or replay another's dead letters."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from engine.deck.spec import parse_deck
from engine.engine import open_engine
from engine.states import SessionState as S
from tests.adversarial.support import ROOT, hello
from tests.support import running, wait_state, wait_text

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio
BUS = f"{ROOT}/.venv/bin/swarmdeck bus"


async def test_a_session_holding_another_sessions_token_cannot_speak_as_it(
    tmp_path: Path,
) -> None:
    stolen = tmp_path / "stolen-token"
    deck_text = f"""
[pool]
size = 2
warm = 2

[[session]]
name = "victim"
command = "sleep 30"

[[session]]
name = "thief"
command = '''SWARMDECK_SESSION=victim SWARMDECK_BUS_TOKEN=$(cat {stolen}) {BUS} send thief '1'
echo "as-victim=$?"; {BUS} send victim '2'; echo "as-itself=$?"; sleep 30'''
"""
    deck = parse_deck(deck_text, tmp_path / "deck.toml")
    async with open_engine(deck, tmp_path / "run") as engine:
        stolen.write_text(engine.bus.token_for("victim"))  # what /proc/PID/environ shows
        await engine.start_all()
        await wait_state(engine, "thief", S.ACTIVE)
        await wait_text(engine, "thief", "as-itself=", timeout=20)
        screen = "\n".join(engine.sessions["thief"].screen.text())
        assert "as-victim=4" in screen  # refused: bad-token's exit code
        assert "as-itself=0" in screen
        assert "belongs to session thief" in screen
        inbox = engine.bus.mailbox("inbox:thief")
        assert len(inbox) == 0  # nothing arrived "from the victim"


IDLE = """
[[session]]
name = "a"
command = "sleep 30"

[[session]]
name = "b"
command = "sleep 30"
"""


async def test_dead_letters_are_their_receivers_and_the_operators_only(tmp_path: Path) -> None:
    async with running(tmp_path, IDLE) as engine:
        engine.bus.send("direct", "a", "@operator", {"secret": 42}, reliable=True)
        engine.bus.commit()
        path = str(engine.bus.socket_path)
        tokens = {s: engine.bus.token_for(s) for s in ("a", "b")}

        def attack() -> tuple[list[object], list[object], int, int]:
            a, b = hello(path, "a", tokens["a"]), hello(path, "b", tokens["b"])
            msg = a.call("recv", wait=5)["message"]
            assert a.call("nack", id=msg["id"], requeue=False)["ok"]  # dead-lettered
            seen_by_b = b.call("dlq.list")["letters"]
            replayed_by_b = b.call("dlq.replay")["replayed"]
            seen_by_a = a.call("dlq.list")["letters"]
            replayed_by_a = a.call("dlq.replay", ids=[msg["id"]])["replayed"]
            a.close()
            b.close()
            return seen_by_b, seen_by_a, replayed_by_b, replayed_by_a

        seen_by_b, seen_by_a, replayed_by_b, replayed_by_a = await anyio.to_thread.run_sync(attack)
        assert (seen_by_b, replayed_by_b) == ([], 0)
        assert len(seen_by_a) == 1
        assert replayed_by_a == 1
        assert len(engine.bus.mailbox("inbox:a")) == 1  # back where it was owed
