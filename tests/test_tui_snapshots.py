"""Snapshot tests of the main views (pytest-textual-snapshot's SVG format) from the
deterministic showcase deck; `pytest --snapshot-update` accepts a new look."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from pytest_textual_snapshot import SVGImageExtension  # type: ignore[import-untyped]

from tui.showcase import capture

if TYPE_CHECKING:
    from pathlib import Path

    from syrupy.assertion import SnapshotAssertion

pytestmark = pytest.mark.anyio


@pytest.fixture
def svg_snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(SVGImageExtension)


@pytest.mark.parametrize(
    ("view", "theme"),
    [
        ("grid", "swarmdeck-dark"),
        ("paused", "swarmdeck-dark"),
        ("zoomed", "swarmdeck-light"),
        ("help", "swarmdeck-dark"),
        ("fork", "swarmdeck-high-contrast"),
    ],
)
async def test_the_view_looks_as_accepted(
    tmp_path: Path, svg_snapshot: SnapshotAssertion, view: str, theme: str
) -> None:
    assert await capture(tmp_path, view, theme) == svg_snapshot
