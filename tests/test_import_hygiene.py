"""The engine never imports the UI (nor the SSH front end), statically or at run time, and the
layers of the house hold: which package may import which, and who may touch processes.

Stack, bottom-up (docs/architecture.md): the base modules (errors, states, events,
screen(_scan), scrollback_store, metrics, statistics) < deck/ < terminals/ < sessions/ <
scheduling/ < the engine (engine.py, hub, api) < bus/ and remote/ (services on the engine) <
tui/ (only through the public faces).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

FORBIDDEN = {"tui", "themes", "textual", "rich", "asyncssh"}  # SSH serving lives in tui/ssh/
ENGINE = Path(__file__).resolve().parent.parent / "engine"
SSH_FACADE = ENGINE / "terminals" / "hosts" / "ssh_link.py"
"""The one engine module that imports asyncssh: sessions on [[host]]s (docs/hosts.md). Only
engine/terminals/hosts/ imports it, and only a deck with hosts loads that package."""


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
        str(path.relative_to(ENGINE.parent)): sorted(_imported_roots(path) & _forbidden(path))
        for path in ENGINE.rglob("*.py")
        if _imported_roots(path) & _forbidden(path)
    }
    assert offenders == {}


def _forbidden(path: Path) -> set[str]:
    return FORBIDDEN - {"asyncssh"} if path == SSH_FACADE else FORBIDDEN


def test_importing_every_engine_module_loads_no_ui_package() -> None:
    code = f"""
import importlib, pkgutil, sys
import engine
for mod in pkgutil.walk_packages(engine.__path__, "engine."):
    if not mod.name.startswith("engine.terminals.hosts."):
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


# -- layers --------------------------------------------------------------------------------


ROOT = ENGINE.parent
BASE = {
    *("errors", "states", "events", "screen", "screen_scan", "scrollback_store"),
    *("metrics", "statistics"),
}
LAYER = {"deck": 1, "terminals": 2, "sessions": 3, "scheduling": 4}
PROCESS_CALLS = {("os", "killpg"), ("os", "openpty"), ("pty", "openpty"), ("subprocess", "Popen")}


def _imports(path: Path) -> list[str]:
    """Every absolute module a file imports, `from a.b import c` giving `a.b.c` when c is a
    module of ours (so `from engine.terminals import procs` counts as terminals)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [f"{node.module}.{alias.name}" for alias in node.names]
    return found


def _package(module: str) -> str:
    """engine.X.Y -> X (a sub-package) or the base module's name; '' for engine itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "engine" else ""


def _rank(package: str) -> int:
    if package in BASE:
        return 0
    return LAYER.get(package, 5)  # the engine, its hub and api, bus/, remote/ sit on top


def _engine_files() -> list[Path]:
    return sorted(p for p in ENGINE.rglob("*.py") if p.name != "__init__.py")


def test_no_engine_layer_imports_a_layer_above_it() -> None:
    upward = []
    for path in _engine_files():
        own = _package("engine." + ".".join(path.relative_to(ENGINE).with_suffix("").parts))
        for module in _imports(path):
            if module.startswith("engine.") and _rank(_package(module)) > _rank(own):
                upward.append(f"{path.relative_to(ROOT)} imports {module}")
    assert upward == []


def test_the_deck_imports_only_errors_and_itself() -> None:
    bad = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sorted((ENGINE / "deck").glob("*.py"))
        for module in _imports(path)
        if module.startswith("engine") and not module.startswith(("engine.deck", "engine.errors"))
    ]
    assert bad == []


def test_sessions_never_import_scheduling() -> None:
    bad = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sorted((ENGINE / "sessions").glob("*.py"))
        for module in _imports(path)
        if module.startswith("engine.scheduling")
    ]
    assert bad == []


def _process_calls(path: Path) -> list[str]:
    """Calls of os.killpg / openpty / Popen, however imported (annotations are fine)."""
    calls = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        func = node.func if isinstance(node, ast.Call) else None
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            if (func.value.id, func.attr) in PROCESS_CALLS:
                calls.append(f"{path.name}:{func.lineno} {func.value.id}.{func.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module in {"os", "pty", "subprocess"}:
            calls += [
                f"{path.name}:{node.lineno} from {node.module} import {a.name}"
                for a in node.names
                if (node.module, a.name) in PROCESS_CALLS
            ]
    return calls


def test_only_terminals_start_or_signal_processes_in_the_engine() -> None:
    """The daemon starter (`swarmdeck run` starting `serve`) and the room's desktop
    notification (`notify-send`, tui/attention_alert.py) are the only Popens outside it:
    a tool starting another for the person, never the engine touching a session."""
    allowed = {
        ENGINE / "terminals",
        ROOT / "tui" / "cli" / "daemon.py",
        ROOT / "tui" / "attention_alert.py",
    }
    offenders = [
        call
        for tree in (ENGINE, ROOT / "tui")
        for path in sorted(tree.rglob("*.py"))
        if not any(path == a or a in path.parents for a in allowed)
        for call in _process_calls(path)
    ]
    assert offenders == []


def test_the_rule_above_sees_each_kind_of_call(tmp_path: Path) -> None:
    """The check is worth something only if it catches the calls it is about."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os, subprocess\nfrom pty import openpty\np: subprocess.Popen[bytes]\n"
        "os.killpg(1, 9)\nsubprocess.Popen(['true'])\n"
    )
    assert _process_calls(sample) == [
        "sample.py:2 from pty import openpty",
        "sample.py:4 os.killpg",
        "sample.py:5 subprocess.Popen",
    ]


PUBLIC_FACES = {"engine", "engine.remote", "engine.bus.cli"}


@pytest.mark.parametrize("tree", ["tui", "themes"])
def test_the_room_uses_only_the_engines_public_faces(tree: str) -> None:
    bad = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sorted((ROOT / tree).rglob("*.py"))
        for module in _imports(path)
        if module.startswith("engine")
        and not any(module == face or module.rsplit(".", 1)[0] == face for face in PUBLIC_FACES)
    ]
    assert bad == []


def test_the_public_faces_name_only_what_exists() -> None:
    import engine
    import engine.remote

    for face in (engine, engine.remote):
        missing = [name for name in face.__all__ if getattr(face, name, None) is None]
        assert missing == [], face.__name__


LONG = 300  # lines: a module past this says why at its top (docs/architecture.md)


def test_every_long_module_says_at_its_top_why_it_is_one_module() -> None:
    unexplained = []
    for tree in (ENGINE, ROOT / "tui", ROOT / "themes"):
        for path in sorted(tree.rglob("*.py")):
            source = path.read_text()
            if source.count("\n") <= LONG:
                continue
            doc = ast.get_docstring(ast.parse(source)) or ""
            if "\nSize: " not in doc:
                unexplained.append(str(path.relative_to(ROOT)))
    assert unexplained == []


def test_no_two_modules_share_a_name_in_one_package_tree() -> None:
    for tree in (ENGINE, ROOT / "tui"):
        names = [p.name for p in tree.rglob("*.py") if p.name not in {"__init__.py", "__main__.py"}]
        assert sorted({n for n in names if names.count(n) > 1}) == [], tree.name
