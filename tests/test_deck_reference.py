"""The deck's reference page and JSON Schema come from the models and stay in step."""

from __future__ import annotations

import json
import subprocess
import sys

from engine.deck.reference import render_markdown
from tests.remote_support import ROOT


def test_the_deck_reference_page_is_generated_from_the_models() -> None:
    page = (ROOT / "docs" / "deck-reference.md").read_text()
    assert page == render_markdown(), "regenerate: python -m engine.deck.reference > docs/..."


def test_swarmdeck_schema_prints_what_a_deck_may_hold_as_written() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tui.cli", "schema"], capture_output=True, text=True, check=True
    )
    schema = json.loads(out.stdout)
    assert schema["required"] == ["session"]  # the name defaults to the file's
    session = schema["$defs"]["SessionSpec"]
    assert session["additionalProperties"] is False  # editors flag a misspelt key
    timeout = {branch.get("type") for branch in session["properties"]["timeout"]["anyOf"]}
    assert {"number", "string"} <= timeout  # "30s" is valid, as in the deck
    assert "session" in schema["properties"]
