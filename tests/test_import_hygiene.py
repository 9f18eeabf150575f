"""The engine never imports the UI (nor the SSH front end), statically or at run time."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

FORBIDDEN = {"tui", "themes", "textual", "rich", "asyncssh"}  # SSH serving lives in tui/ssh/
ENGINE = Path(__file__).resolve().parent.parent / "engine"


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_engine_module_names_the_ui_in_an_import() -> None:
    offenders = {
        str(path.relative_to(ENGINE.parent)): sorted(_imported_roots(path) & FORBIDDEN)
        for path in ENGINE.rglob("*.py")
        if _imported_roots(path) & FORBIDDEN
    }
    assert offenders == {}


def test_importing_every_engine_module_loads_no_ui_package() -> None:
    code = f"""
import importlib, pkgutil, sys
import engine
for mod in pkgutil.walk_packages(engine.__path__, "engine."):
    importlib.import_module(mod.name)
print(sorted({{m.split(".")[0] for m in sys.modules}} & set({sorted(FORBIDDEN)!r})))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_the_helper_processes_need_only_the_standard_library() -> None:
    """launcher.py and relay_process.py run as `python -I -S` (no site packages, fast start);
    the relay's one optional import, msgspec, is reached through a path the engine passes
    and has a stdlib fallback."""
    allowed = set(sys.stdlib_module_names) | {"__future__"}
    extra = {
        name: sorted(_imported_roots(ENGINE / "terminals" / name) - allowed)
        for name in ("launcher.py", "relay_process.py")
    }
    assert extra == {"launcher.py": [], "relay_process.py": ["msgspec"]}


def test_the_relay_records_with_the_stdlib_encoder_when_msgspec_is_missing() -> None:
    code = """
import sys
sys.path.insert(0, sys.argv[1])
import relay_process
relay_process._use_msgspec("/nonexistent")
print(relay_process._encode((1.5, "o", "\\x1bé")).decode())
"""
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, str(ENGINE / "terminals")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == '[1.5, "o", "\\u001bé"]'
