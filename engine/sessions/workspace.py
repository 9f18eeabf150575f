"""Isolated workspaces: a place of its own for each session that asks for one.

Inside a git repository a session gets a worktree on its own branch,
``swarmdeck/<run>/<session>``, checked out from HEAD or the deck's ``base`` ref
(``workspace = { isolated = true, base = "main" }``; uncommitted changes are not copied);
elsewhere a fresh, empty directory (a ``base`` other than HEAD then fails the session).
Either way it lives under ``<run dir>/workspaces/<session>`` and is kept after the run for
inspection; `swarmdeck clean` removes old ones (worktrees with ``git worktree remove``).
"""

from __future__ import annotations

import re
from pathlib import Path

import anyio

from engine.errors import WorkspaceError

__all__ = ["Workspaces"]
_UNSAFE_REF = re.compile(r"[^A-Za-z0-9._#-]+")


class Workspaces:
    """Creates workspaces for one run; git calls are serialised (they share repo locks)."""

    def __init__(self, run_dir: Path) -> None:
        self.root = run_dir / "workspaces"
        self.run_id = _UNSAFE_REF.sub("-", run_dir.name).strip(".-") or "run"
        self._git_lock = anyio.Lock()

    def branch(self, session: str) -> str:
        return f"swarmdeck/{self.run_id}/{session}"

    async def prepare(self, session: str, base: Path, ref: str = "HEAD") -> Path:
        """The directory the session should run in; `base` is its configured cwd, `ref`
        what its worktree is checked out from."""
        target = self.root / session
        if target.exists():
            raise WorkspaceError(f"{target} already exists")
        async with self._git_lock:
            top = await _git_toplevel(base)
            if top is None:
                if ref != "HEAD":
                    raise WorkspaceError(
                        f"base = {ref!r} needs a git repository; {base} is not in one"
                    )
                target.mkdir(parents=True)
                return target
            self.root.mkdir(parents=True, exist_ok=True)
            await _git(top, "worktree", "add", "-b", self.branch(session), str(target), ref)
        return target / (await anyio.Path(base).resolve()).relative_to(top)


async def _git_toplevel(path: Path) -> Path | None:
    try:
        out = await _git(path, "rev-parse", "--show-toplevel")
    except WorkspaceError:
        return None
    return Path(await anyio.Path(out.strip()).resolve())


async def _git(cwd: Path, *args: str) -> str:
    try:
        done = await anyio.run_process(["git", "-C", str(cwd), *args], check=False)
    except OSError as exc:
        raise WorkspaceError(f"cannot run git: {exc}") from exc
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise WorkspaceError(f"git {args[0]} failed: {message[-1] if message else done.returncode}")
    return done.stdout.decode(errors="replace")
