"""The room shows which sessions wait for the operator: a mark in the list and on the pane,
attention-first sorting on `a`, and the bell when config.toml asks for it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from engine.events import AttentionChanged
from engine.states import SessionState
from tests.support import wait_state
from tests.tui_support import open_room, session, until
from tui.attention_alert import AttentionAlert, alert, describe
from tui.user_config import ConfigError, load_config
from tui.widgets.session_list import ATTENTION

if TYPE_CHECKING:
    from pathlib import Path

    from tui.app import ControlRoom

pytestmark = pytest.mark.anyio

QUIET = session("quiet", "exec sleep 60")
ASKER = session(
    "asker", "sleep 0.5; printf 'done\\\\a'; exec sleep 60", 'attention = { idle = "off" }'
)


def _name_cell(app: ControlRoom, name: str) -> str:
    return str(app.session_list.get_cell(name, "session"))


async def test_a_marked_session_shows_in_the_list_and_on_its_pane_and_sorts_first(
    tmp_path: Path,
) -> None:
    async with open_room(tmp_path, QUIET + ASKER) as (engine, app, pilot):
        await wait_state(engine, "asker", SessionState.ACTIVE)
        pane = app.grid.panes["asker"]
        await until(pilot, lambda: _name_cell(app, "asker").startswith(ATTENTION), timeout=20)
        assert _name_cell(app, "quiet") == "quiet"
        await until(pilot, lambda: pane.has_class("-attention"))
        assert "bell" in str(pane.border_title)
        assert app.session_list.shown() == ["quiet", "asker"]
        await pilot.press("a")
        assert app.session_list.shown() == ["asker", "quiet"]
        assert app.selected == "quiet"  # the selection stays on its session
        await pilot.press("k", "enter")  # type into it: seen
        await until(pilot, lambda: not app.grid.panes["asker"].has_class("-attention"))
        assert app.focused is app.grid.panes["asker"]
        assert engine.session_info("asker").attention == ""
        assert _name_cell(app, "asker") == "asker"
        assert app.session_list.shown() == ["asker", "quiet"]  # no pane moved under the typist
        await pilot.press("ctrl+right_square_bracket", "a")
        assert app.session_list.shown() == ["quiet", "asker"]  # nobody waits: deck order
        await pilot.press("s")
        assert app.session_list.ordering == "deck order"  # s left attention first only


def _event(reason: str, text: str = "") -> AttentionChanged:
    return AttentionChanged(session="agent", reason=reason, text=text)


def test_the_room_rings_the_bell_for_a_new_mark_only_when_asked() -> None:
    rung: list[str] = []
    alert(AttentionAlert(), _event("bell"), lambda: rung.append("default"))
    alert(AttentionAlert(bell=True), _event(""), lambda: rung.append("cleared"))
    alert(AttentionAlert(bell=True), _event("idle"), lambda: rung.append("idle"))
    assert rung == ["idle"]
    assert describe(_event("notify", "build done")) == "agent sent a notification: build done"


def test_config_toml_attention_table_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[attention]\nbell = true\nnotify_send = true\n")
    assert load_config(path).attention == AttentionAlert(bell=True, notify_send=True)
    path.write_text('[attention]\nbel = true\nnotify_send = "yes"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "attention.notify_send",
        "attention.bel",
    ]
