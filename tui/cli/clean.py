"""`swarmdeck clean [--older-than 7d] [--dry-run]`: old run directories, and the git
worktrees their isolated workspaces are, removed; never a live run's.

A run directory is old when nothing at its top level changed for longer than the age
given. A live engine holds its directory's lock (engine/rundir.py), and clean takes that
lock before it removes anything, so a directory in use is skipped and one being removed
cannot be claimed meanwhile. A workspace that is a git worktree is removed with its
directory and then pruned from its repository (`git worktree prune`), so git forgets it;
its branch (`swarmdeck/<run>/<session>`) is kept, with any commits made on it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse


def clean(args: argparse.Namespace) -> int:
    from engine import hold_if_idle, parse_duration
    from tui.cli.settings import room_config

    try:
        age = parse_duration(args.older_than)
    except ValueError as exc:
        print(f"swarmdeck clean: --older-than: {exc}", file=sys.stderr)
        return 2
    config = room_config(args)
    if config is None:
        return 2
    root = args.runs or config.runs or Path(".swarmdeck") / "runs"
    if not root.is_dir():
        print(f"swarmdeck clean: no run directories in {root}")
        return 0
    now, removed, kept_live, failed = time.time(), 0, 0, 0
    verb = "would remove" if args.dry_run else "removed"
    for run_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        if now - _last_change(run_dir) < age:
            continue
        with hold_if_idle(run_dir, create=not args.dry_run) as idle:
            if not idle:
                print(f"kept {run_dir}: a live engine holds it")
                kept_live += 1
                continue
            repos = _worktree_repos(run_dir / "workspaces")
            if not args.dry_run:
                try:
                    shutil.rmtree(run_dir)
                except OSError as exc:
                    print(f"swarmdeck clean: cannot remove {run_dir}: {exc}", file=sys.stderr)
                    failed += 1
                for repo in repos:
                    _git(repo, "worktree", "prune")
        worktrees = f" and {len(repos)} worktree(s)" if repos else ""
        print(f"{verb} {run_dir}{worktrees}")
        removed += 1
    print(f"{verb} {removed} run director{'y' if removed == 1 else 'ies'}"
          f" older than {args.older_than} in {root}; {kept_live} live kept")  # fmt: skip
    return 1 if failed else 0


def _last_change(run_dir: Path) -> float:
    """The newest modification time of the directory and what is directly in it."""
    times = [run_dir.lstat().st_mtime]
    for entry in run_dir.iterdir():
        try:
            times.append(entry.lstat().st_mtime)
        except OSError:
            continue
    return max(times)


def _worktree_repos(workspaces: Path) -> set[Path]:
    """The git directories of the repositories whose worktrees these workspaces are."""
    repos: set[Path] = set()
    if not workspaces.is_dir():
        return repos
    for workspace in workspaces.iterdir():
        link = workspace / ".git"
        if not link.is_file():  # a worktree's .git is a file naming its gitdir
            continue
        common = _git(workspace, "rev-parse", "--path-format=absolute", "--git-common-dir")
        if common:
            repos.add(Path(common))
    return repos


def _git(where: Path, *args: str) -> str:
    """git's output, or "" when it fails (a repository moved or deleted since)."""
    try:
        command = ["git", "-C", str(where), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""
