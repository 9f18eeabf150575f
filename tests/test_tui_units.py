"""Pure parts of the room, without an App: key encoding, rendering, bus rows, layout."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from engine import BusMessageRedelivered, BusMessageRouted
from engine.screen import Style, TerminalModes
from engine.states import SessionState
from themes import load_themes
from tui.cli.headless import console_theme
from tui.key_encoding import encode_key, encode_mouse, encode_paste
from tui.render import Palette, line_strip
from tui.widgets.bus_panel import BusRow
from tui.widgets.pane_grid import grid_shape
from tui.widgets.pool_panel import alerts

PLAIN = TerminalModes()
APP = TerminalModes(app_cursor=True, bracketed_paste=True, mouse="normal", mouse_sgr=True)


def test_arrows_follow_application_cursor_mode() -> None:
    assert encode_key("up", None, PLAIN) == b"\x1b[A"
    assert encode_key("up", None, APP) == b"\x1bOA"
    assert encode_key("ctrl+up", None, APP) == b"\x1b[1;5A"


def test_function_ctrl_and_alt_keys_encode_as_xterm_does() -> None:
    assert encode_key("f1", None, PLAIN) == b"\x1bOP"
    assert encode_key("f12", None, PLAIN) == b"\x1b[24~"
    assert encode_key("shift+f5", None, PLAIN) == b"\x1b[15;2~"
    assert encode_key("ctrl+c", None, PLAIN) == b"\x03"
    assert encode_key("alt+x", "x", PLAIN) == b"\x1bx"
    assert encode_key("shift+tab", None, PLAIN) == b"\x1b[Z"
    assert encode_key("enter", "\r", PLAIN) == b"\r"
    assert encode_key("é", "é", PLAIN) == "é".encode()


def test_paste_is_bracketed_only_when_the_program_asked() -> None:
    assert encode_paste("a\nb", PLAIN) == b"a\rb"
    assert encode_paste("a", APP) == b"\x1b[200~a\x1b[201~"


def test_mouse_is_reported_only_in_the_requested_mode() -> None:
    assert encode_mouse("press", 1, 0, 0, PLAIN) is None
    assert encode_mouse("press", 1, 4, 2, APP) == b"\x1b[<0;5;3M"
    assert encode_mouse("release", 1, 4, 2, APP) == b"\x1b[<0;5;3m"
    assert encode_mouse("motion", 1, 4, 2, APP) is None


def test_ansi_colours_come_from_the_theme_and_256_colours_are_exact() -> None:
    dark, light = (Palette(t.variables) for t in load_themes() if "contrast" not in t.name)
    red = ((("x", Style(fg=1)),),)
    assert line_strip(red[0], 3, dark) != line_strip(red[0], 3, light)
    orange = dark.style(Style(fg=208)).color
    assert orange is not None
    assert orange.triplet is not None
    assert orange.triplet.hex == "#ff8700"
    assert line_strip((("hello", Style()),), 3, dark).text == "hel"


def test_bus_rows_show_each_typed_bus_event_where_the_operator_looks_for_it() -> None:
    routed = {"id": "m1", "sender": "a", "reliable": True, "priority": "normal", "mailboxes": 2}
    row = BusRow.from_event(BusMessageRouted(route="topic", target="jobs.x", **routed))
    assert (row.kind, row.topic, row.route, row.reliability, row.detail) == (
        "message-routed", "jobs.x", "a → topic", "reliable", "2 mailboxes"
    )  # fmt: skip
    assert row.matches("jobs")
    assert not row.matches("nothing")
    direct = BusRow.from_event(BusMessageRouted(route="direct", target="b", **routed))
    assert (direct.topic, direct.route) == ("(direct)", "a → b")
    again = BusRow.from_event(
        BusMessageRedelivered(id="m1", mailbox="b", attempt=2, reason="ack-timeout")
    )
    assert (again.kind, again.topic, again.detail) == (
        "message-redelivered", "b", "ack-timeout · attempt 2"
    )  # fmt: skip


def test_grid_layout_for_one_to_nine_panes() -> None:
    shapes = [grid_shape(n) for n in range(1, 10)]
    assert shapes == [(1, 1), (2, 1), (2, 2), (2, 2), (3, 2), (3, 2), (3, 3), (3, 3), (3, 3)]


def test_headless_styles_come_from_the_default_theme() -> None:
    styles = console_theme().styles
    dark = load_themes()[0].variables
    for state in SessionState:
        colour = styles[f"state.{state}"].color
        assert colour is not None
        assert colour.triplet is not None
        assert colour.triplet.hex == dark[f"state-{state}"]
    assert {"verdict.succeeded", "verdict.partial", "verdict.failed", "notice"} <= set(styles)


def test_pool_alerts_name_their_kind() -> None:
    sample = SimpleNamespace(saturation=1.5, waiters=3, capacity=2, wait_p95=2.0)
    found = alerts(sample)  # type: ignore[arg-type]
    assert [kind for kind, _ in found] == ["saturated", "wait"]
    assert found[0][1] == "saturated: 3 waiting for 2 terminals"


@pytest.mark.anyio
async def test_screens_paint_on_the_rooms_faster_update_tick() -> None:
    """tui.app sets Textual's module-level update period; fails if Textual stops reading it."""
    from textual.app import App

    from tui.app import PAINT_PERIOD

    app: App[None] = App()
    async with app.run_test():
        assert app.screen._update_timer._interval == PAINT_PERIOD


def test_a_theme_without_swarmdecks_variables_gets_each_one_as_an_rgb_colour() -> None:
    from textual._ansi_theme import ALABASTER, MONOKAI
    from textual.theme import BUILTIN_THEMES

    from themes.definitions import REQUIRED_VARIABLES
    from themes.derived import derived_variables

    for name, theme in BUILTIN_THEMES.items():
        variables = derived_variables(theme, MONOKAI if theme.dark else ALABASTER)
        assert set(variables) == REQUIRED_VARIABLES, name
        assert all(len(v) == 7 and v.startswith("#") for v in variables.values()), name
        Palette(variables)  # panes can draw with it
