"""Pure parts of the room, without an App: key encoding, rendering, bus rows, layout."""

from __future__ import annotations

import pytest

from engine import (
    AlertCleared,
    AlertRaised,
    BusMessageRedelivered,
    BusMessageRouted,
    ContentionSampled,
)
from engine.screen import Style, TerminalModes
from engine.states import SessionState
from themes import load_themes
from tui.cli.figures import contention_lines, sparkline
from tui.cli.headless import console_theme
from tui.key_encoding import encode_key, encode_mouse, encode_paste
from tui.render import Palette, line_strip
from tui.screens.alerts import alert_rows
from tui.widgets.bus_panel import BusRow
from tui.widgets.pane_grid import grid_shape
from tui.widgets.pool_panel import contention_text, seconds

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


def contention(**fields: object) -> ContentionSampled:
    base: dict[str, object] = {
        "at": 100.0, "window": 30.0, "since": 0.0, "slots": 4, "target_parallel": 16,
        "parallel_reason": "auto: 3 ready, run time ×1.02 at 2", "running": 4, "waiting": 4,
        "demand": 8, "utilisation": 1.0, "saturation": 1.0, "wait_p50": 0.5,
        "wait_p95": 12.0, "wait_max": 12.4, "throughput": 0.25, "bus_rate": 3.0,
        "bus_routed": 90, "contention_rate": 0.5, "starts": 8, "waited": 4,
    }  # fmt: skip
    return ContentionSampled.model_validate({"at": base["at"], "stats": {**base, **fields}})


def test_the_pool_panel_shows_the_contention_model_and_why_max_parallel_is_what_it_is() -> None:
    text = contention_text(contention().stats)
    assert "max_parallel 4 → 16" in text
    assert "auto: 3 ready, run time ×1.02 at 2" in text
    assert "running 4  waiting 4  demand 8" in text
    assert "queue wait p50 500 ms  p95 12.0 s" in text
    assert "50% of 8 starts waited" in text
    assert "→" not in contention_text(contention(target_parallel=4).stats).splitlines()[0]
    assert [seconds(0.0042), seconds(3.25), seconds(600)] == ["4 ms", "3.2 s", "10.0 min"]


def test_sparklines_scale_to_the_largest_value_and_keep_the_newest() -> None:
    assert sparkline([0, 1, 2, 4, 8], 5) == " ▁▂▄█"
    assert sparkline([5, 5], 4) == "██"
    assert sparkline([], 4) == ""
    assert sparkline(list(range(100)), 10)[-1] == "█"
    assert len(sparkline(list(range(100)), 10)) == 10


def test_headless_contention_lines_have_every_figure_and_a_sparkline_each() -> None:
    history = [contention(waiting=w, wait_p95=float(w)) for w in (0, 2, 4, 8)]
    lines = contention_lines(history, width=20)
    assert lines[0].startswith("contention: max_parallel 4 → 16")
    joined = "\n".join(lines)
    for figure in ("running 4", "waiting 8", "demand 8", "saturation 100%", "p95 8.0 s"):
        assert figure in joined
    assert any(line.startswith("  waiting") and line.endswith("▂▄█") for line in lines)


def test_the_alert_list_is_newest_first_and_marks_what_is_still_in_force() -> None:
    raised = AlertRaised(
        at=1.0, alert="saturation", subject="run", value=2.0, threshold=1.0, text="saturated"
    )
    cleared = AlertCleared(at=2.0, alert="saturation", subject="run", text="cleared: saturated")
    again = AlertRaised(
        at=3.0, alert="saturation", subject="run", value=2.0, threshold=1.0, text="saturated"
    )
    rows = alert_rows([raised, cleared, again], {("saturation", "run")}, redact=True)
    assert [(r[1], r[3]) for r in rows] == [
        ("active", "saturated"), ("cleared", "cleared: saturated"), ("raised", "saturated")
    ]  # fmt: skip


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
