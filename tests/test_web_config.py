"""`--web`'s options, tokens and links file, and what a browser room leaves out."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.support import running
from tui.app import ControlRoom
from tui.web.tokens import RoomTokens, write_links
from tui.web.web_config import WebConfigError, parse_web_listen

if TYPE_CHECKING:
    from pathlib import Path


def test_web_listens_on_loopback_unless_told_and_a_public_host_needs_web_public() -> None:
    assert parse_web_listen("8080") == ("127.0.0.1", 8080)
    assert parse_web_listen(":0") == ("127.0.0.1", 0)
    assert parse_web_listen("[::1]:8080") == ("::1", 8080)
    assert parse_web_listen("localhost:8080") == ("localhost", 8080)
    for public in ("0.0.0.0:8080", "[::]:8080", "192.0.2.7:8080", "example.test:8080"):
        with pytest.raises(WebConfigError, match="--web-public"):
            parse_web_listen(public)
    assert parse_web_listen("0.0.0.0:8080", public=True) == ("0.0.0.0", 8080)
    with pytest.raises(WebConfigError, match="expected HOST:PORT or PORT"):
        parse_web_listen("127.0.0.1:http")


def test_a_token_picks_its_role_and_anything_else_picks_none() -> None:
    tokens = RoomTokens(("operator", "viewer"))
    operator, viewer = tokens.by_role["operator"], tokens.by_role["viewer"]
    assert len(operator) >= 43
    assert operator != viewer
    assert (tokens.role_for(operator), tokens.role_for(viewer)) == ("operator", "viewer")
    for wrong in (None, "", operator[:-1], operator + "x", viewer.upper()):
        assert tokens.role_for(wrong) is None
    assert RoomTokens(("viewer",)).links("http://127.0.0.1:1").keys() == {"viewer"}


def test_the_links_file_is_private_from_its_first_byte_and_replaces_an_older_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "web-links-8080.json"
    path.write_text("old")
    path.chmod(0o644)
    write_links(path, {"viewer": "http://127.0.0.1:8080/?token=t"})
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text()) == {"viewer": "http://127.0.0.1:8080/?token=t"}
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_serve_refuses_a_public_web_address_before_starting_the_engine(tmp_path: Path) -> None:
    deck = tmp_path / "deck.toml"
    deck.write_text('[[session]]\nname = "a"\ncommand = "true"\n')
    run_dir = tmp_path / "run"
    for args, message in [
        (["--web", "0.0.0.0:8080"], "not a loopback address"),
        (["--web-public"], "--web-public needs --web"),
        (["--web", "8080", "--web-max-clients", "0"], "at least 1"),
    ]:
        command = [sys.executable, "-m", "tui.cli", "serve", str(deck), "--run-dir", str(run_dir)]
        out = subprocess.run([*command, *args], capture_output=True, text=True, timeout=30)
        assert out.returncode == 1
        assert out.stderr.startswith("swarmdeck serve: ")
        assert message in out.stderr
    assert not run_dir.exists()


@pytest.mark.anyio
async def test_an_attached_room_as_every_browser_room_is_offers_no_screenshot_command(
    tmp_path: Path,
) -> None:
    """tui/web/room.py runs the room through run_control_room, so attached=True."""
    async with running(tmp_path, '[[session]]\nname = "a"\ncommand = "sleep 30"\n') as engine:
        for attached, expected in [(False, True), (True, False)]:
            room = ControlRoom(engine, attached=attached)
            async with room.run_test(size=(100, 30)):
                titles = {command.title for command in room.get_system_commands(room.screen)}
            assert "Theme" in titles
            assert ("Screenshot" in titles) is expected
