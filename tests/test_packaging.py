"""The package as a user gets it: a wheel built from the checkout, installed in a fresh
venv outside it (pip's own configuration: the machine's index or mirror), runs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]


@pytest.mark.slow
@pytest.mark.timeout(300)  # ~30 s here; a loaded machine may take longer
def test_the_wheel_installs_in_a_fresh_venv_with_only_runtime_deps_and_runs(
    tmp_path: Path,
) -> None:
    subprocess.run([*PIP, "wheel", "--no-deps", "-w", str(tmp_path / "dist"), str(ROOT)],
                   check=True, capture_output=True, timeout=240)  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("swarmdeck-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    install = [*PIP, "--python", str(venv / "bin" / "python"), "install", "--no-compile",
               "-c", str(ROOT / "constraints.txt"), str(wheel)]  # fmt: skip
    subprocess.run(install, check=True, capture_output=True, timeout=240)
    shutil.copy(ROOT / "examples" / "demo.toml", tmp_path / "demo.toml")
    swarmdeck = str(venv / "bin" / "swarmdeck")

    def run(*args: str) -> str:
        out = subprocess.run(
            args, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
        )
        assert out.returncode == 0, (args, out.stdout, out.stderr)
        return out.stdout

    assert run(swarmdeck, "--version").startswith("swarmdeck 0.")
    assert "demo.toml: OK (" in run(swarmdeck, "validate", "demo.toml")
    where = run(str(venv / "bin" / "python"), "-c", "import tui, themes; print(tui.__file__)")
    assert where.startswith(str(venv)), where  # the installed package, not the checkout
    lister = [*PIP[:-1], "--python", str(venv / "bin" / "python"), "list", "--format=freeze"]
    installed = run(*lister)  # (-q would silence it)
    names = {line.split("==")[0].lower() for line in installed.splitlines()}
    assert {"textual", "pydantic", "python-dotenv", "pyyaml"} <= names
    assert not names & {"pytest", "mypy", "ruff", "redis", "playwright", "hypothesis"}
