"""Another local user squatting the runtime directory (issue 20 item 6): whoever owns it
could plant sockets that `ls`/`attach` trust, so it is refused unless it is ours and 0700.

The squatter's directory is made as root and given to `nobody` (os.chown), in a private
XDG_RUNTIME_DIR: the machine's real /tmp/swarmdeck-<uid> is other tests' to use, and the
check is the same for every root (engine/remote/runtime.py)."""

from __future__ import annotations

import os
import pwd
import subprocess
from typing import TYPE_CHECKING

import pytest

from tests.adversarial.serve_support import swarmdeck

if TYPE_CHECKING:
    from pathlib import Path


def _ls(xdg: Path) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k != "SWARMDECK_RUNTIME_DIR"}
    env["XDG_RUNTIME_DIR"] = str(xdg)
    ls = swarmdeck("ls", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = ls.communicate(timeout=30)
    return ls.returncode, out + err


@pytest.mark.skipif(os.getuid() != 0, reason="making a directory another user's needs root")
def test_a_runtime_directory_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    squatted = tmp_path / "swarmdeck"
    squatted.mkdir(mode=0o700)
    nobody = pwd.getpwnam("nobody")
    os.chown(squatted, nobody.pw_uid, nobody.pw_gid)
    code, said = _ls(tmp_path)
    assert code == 1
    assert f"owned by uid {nobody.pw_uid}, not by you" in said


def test_a_runtime_directory_others_can_enter_is_refused_not_chmodded(tmp_path: Path) -> None:
    loose = tmp_path / "swarmdeck"
    loose.mkdir()
    loose.chmod(0o777)
    code, said = _ls(tmp_path)
    assert code == 1
    assert "has mode 777; it must be 700" in said
    assert loose.stat().st_mode & 0o777 == 0o777


def test_a_symlinked_runtime_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / "swarmdeck").symlink_to(tmp_path / "elsewhere")
    code, said = _ls(tmp_path)
    assert code == 1
    assert "is not a directory (a symlink?)" in said


def test_a_private_runtime_directory_of_ours_is_used(tmp_path: Path) -> None:
    assert _ls(tmp_path) == (0, "no running engines\n")
    assert (tmp_path / "swarmdeck").stat().st_mode & 0o777 == 0o700
