"""The recorder writes casts `asciinema play` accepts and screen dumps a person can read."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from engine.screen import Screen
from engine.sessions import recording
from engine.sessions.recording import CastWriter, save_screen, screen_texts

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def read_cast(path: Path) -> tuple[dict[str, Any], list[list[Any]]]:
    header, *events = (json.loads(line) for line in path.read_text("utf-8").splitlines())
    assert isinstance(header, dict)
    return header, events


def test_cast_file_is_valid_asciicast_v2(tmp_path: Path) -> None:
    path = tmp_path / "s.cast"
    with CastWriter(path, 80, 24, "build", {"TERM": "xterm-256color"}) as cast:
        cast.output("hello \x1b[1mworld\x1b[0m\r\n")
        cast.resize(100, 30)
        cast.marker("tests start")
        cast.output("naïve 世界 \ud800")
    header, events = read_cast(path)
    assert header["version"] == 2
    assert (header["width"], header["height"], header["title"]) == (80, 24, "build")
    assert header["env"] == {"TERM": "xterm-256color"}
    assert isinstance(header["timestamp"], int)
    assert [(code, data) for _, code, data in events] == [
        ("o", "hello \x1b[1mworld\x1b[0m\r\n"),
        ("r", "100x30"),
        ("m", "tests start"),
        ("o", "naïve 世界 ?"),
    ]
    times = [t for t, _, _ in events]
    assert times == sorted(times)
    assert all(isinstance(t, float) and t >= 0 for t in times)


def test_non_ascii_is_written_verbatim_not_escaped(tmp_path: Path) -> None:
    path = tmp_path / "u.cast"
    with CastWriter(path, 80, 24, "", {}) as cast:
        cast.output("世界")
    assert "世界" in path.read_text("utf-8")


def test_header_is_on_disk_before_any_output(tmp_path: Path) -> None:
    path = tmp_path / "h.cast"
    cast = CastWriter(path, 80, 24, "t", {})
    try:
        assert json.loads(path.read_text("utf-8"))["version"] == 2
    finally:
        cast.close()


def test_output_is_flushed_once_the_interval_has_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recording, "FLUSH_INTERVAL", 0.0)
    path = tmp_path / "f.cast"
    cast = CastWriter(path, 80, 24, "t", {})
    try:
        cast.output("visible before close")
        assert "visible before close" in path.read_text("utf-8")
    finally:
        cast.close()


def test_close_is_idempotent(tmp_path: Path) -> None:
    cast = CastWriter(tmp_path / "c.cast", 80, 24, "t", {})
    cast.close()
    cast.close()
    assert cast.closed


def test_save_screen_writes_text_and_ansi(tmp_path: Path) -> None:
    screen = Screen(20, 3)
    screen.feed(b"\x1b[31mred\x1b[0m line\r\nsecond")
    text_path, ansi_path = save_screen(tmp_path / "dumps", "job", *screen_texts(screen))
    assert text_path.name == "job.screen.txt"
    assert ansi_path.name == "job.screen.ans"
    assert text_path.read_text("utf-8") == "red line\nsecond\n\n"
    replay = Screen(20, 3)
    replay.feed(ansi_path.read_bytes())
    assert replay.text() == screen.text()
    assert replay.line(0)[0][1].fg == 1


def test_the_engines_own_writer_rotates_past_max_size_and_keeps_the_current_size(
    tmp_path: Path,
) -> None:
    """The engine records itself when a terminal has no live relay: the same rotation."""
    path = tmp_path / "s.cast"
    with CastWriter(path, 80, 24, "s", {}, max_size=4096, keep=1) as cast:
        cast.output("a" * 3000)
        cast.resize(100, 30)
        cast.output("b" * 9000)  # split across files at the cap
        cast.output("c")
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["s.1.cast", "s.cast"]  # keep = 1: the oldest went
    parts = []
    for part in (tmp_path / "s.1.cast", path):
        header, *events = (json.loads(line) for line in part.read_text().splitlines())
        assert (header["version"], header["width"], header["height"]) == (2, 100, 30)
        assert part.stat().st_size <= 4096 + 100
        parts.append("".join(e[2] for e in events if e[1] == "o"))
    assert parts[1].endswith("bc")
    assert set(parts[0] + parts[1]) == {"b", "c"}
