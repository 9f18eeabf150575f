"""Replicas, isolated workspaces (directories and git worktrees), fork and restart."""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

import pytest

from engine.errors import SessionError
from engine.states import SessionState as S
from tests.support import running, wait_state, wait_text

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
}


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, env=env, check=True)
    return done.stdout.decode()


async def test_replicas_get_their_index_and_distinct_isolated_directories(tmp_path: Path) -> None:
    body = """
[[session]]
name = "worker"
command = "echo $SWARMDECK_REPLICA/$SWARMDECK_REPLICAS > index.txt"
replicas = 3
workspace = "isolated"
"""
    async with running(tmp_path, body) as engine:
        assert await engine.wait_finished()
        infos = [engine.session_info(f"worker#{i}") for i in (1, 2, 3)]
    places = [info.workspace for info in infos]
    assert len(set(places)) == 3
    for index, place in enumerate(places, start=1):
        assert place == tmp_path / "run" / "workspaces" / f"worker#{index}"
        assert (place / "index.txt").read_text() == f"{index}/3\n"
    assert [info.replica for info in infos] == [1, 2, 3]


async def test_isolated_sessions_in_a_git_repo_get_worktrees_on_their_own_branches(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "src" / "app.txt").write_text("v1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    body = f"""
[[session]]
name = "agent-a"
command = "git rev-parse --abbrev-ref HEAD > branch.txt; cat app.txt"
cwd = "{repo / "src"}"
workspace = "isolated"

[[session]]
name = "agent-b"
command = "git rev-parse --abbrev-ref HEAD > branch.txt; echo v2 > app.txt"
cwd = "{repo / "src"}"
workspace = "isolated"
"""
    async with running(tmp_path, body) as engine:
        assert await engine.wait_finished()
        places = {n: engine.session_info(n).workspace or repo for n in ("agent-a", "agent-b")}
    for name, place in places.items():
        assert place == tmp_path / "run" / "workspaces" / name / "src"
        assert (place / "branch.txt").read_text() == f"swarmdeck/run/{name}\n"
    assert (places["agent-a"] / "app.txt").read_text() == "v1\n"
    assert (repo / "src" / "app.txt").read_text() == "v1\n"  # the checkout is untouched
    assert "swarmdeck/run/agent-b" in git(repo, "branch", "--list", "swarmdeck/*")
    assert git(repo, "worktree", "list").count("swarmdeck/run/") == 2


async def test_an_isolated_workspace_is_checked_out_from_its_base_ref(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "app.txt").write_text("main\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "app.txt").write_text("feature\n")
    git(repo, "commit", "-q", "-am", "feature")
    git(repo, "checkout", "-q", "main")
    (tmp_path / "plain").mkdir()
    body = f"""
[[session]]
name = "on-feature"
command = "cat app.txt; git rev-parse --abbrev-ref HEAD"
cwd = "{repo}"
workspace = {{ isolated = true, base = "feature" }}

[[session]]
name = "no-such-ref"
command = "true"
cwd = "{repo}"
workspace = {{ base = "nope" }}

[[session]]
name = "not-a-repo"
command = "true"
cwd = "{tmp_path / "plain"}"
workspace = {{ base = "main" }}
"""
    async with running(tmp_path, body) as engine:
        assert not await engine.wait_finished()  # two sessions fail
        lines = engine.sessions["on-feature"].screen.text()
        assert lines[:2] == ["feature", "swarmdeck/run/on-feature"], lines
        missing, plain = engine.session_info("no-such-ref"), engine.session_info("not-a-repo")
    assert (repo / "app.txt").read_text() == "main\n"
    assert missing.state is S.FAILED
    assert missing.reason is not None
    assert missing.reason.startswith("no workspace: git worktree failed: "), missing.reason
    assert "nope" in missing.reason
    assert plain.state is S.FAILED
    assert plain.reason == (
        f"no workspace: base = 'main' needs a git repository; {tmp_path / 'plain'} is not in one"
    )


async def test_fork_starts_a_new_session_from_an_existing_spec(tmp_path: Path) -> None:
    body = """
[[session]]
name = "agent"
command = "echo agent $ROLE $EXTRA"
env = { ROLE = "base" }
"""
    async with running(tmp_path, body) as engine:
        assert await engine.wait_finished()
        name = await engine.fork("agent", {"env": {"EXTRA": "forked"}})
        assert name == "agent-fork-1"
        other = await engine.fork("agent", {"name": "reviewer", "command": "echo reviewing"})
        await wait_state(engine, name, S.COMPLETED)
        await wait_text(engine, name, "agent base forked")
        await wait_text(engine, other, "reviewing")
        assert await engine.wait_finished()
        with pytest.raises(SessionError, match="a session named 'reviewer' exists"):
            await engine.fork("agent", {"name": "reviewer"})
        with pytest.raises(SessionError, match="priority"):
            await engine.fork("agent", {"priority": "urgent"})


async def test_restart_runs_a_final_session_again_as_a_new_attempt(tmp_path: Path) -> None:
    body = """
[[session]]
name = "job"
command = "echo attempt $SWARMDECK_ATTEMPT"
"""
    async with running(tmp_path, body) as engine:
        assert await engine.wait_finished()
        await engine.restart("job")
        assert await engine.wait_finished()
        await wait_text(engine, "job", "attempt 2")
        info = engine.session_info("job")
        assert [a.state for a in info.attempts] == [S.COMPLETED, S.COMPLETED]
        await engine.fork("job", {"name": "long", "command": "sleep 30"})
        await wait_state(engine, "long", S.ACTIVE)
        with pytest.raises(SessionError, match="restart needs it final"):
            await engine.restart("long")
        await engine.terminate("long")


async def test_terminating_a_session_that_waits_on_a_dependency_skips_its_dependents(
    tmp_path: Path,
) -> None:
    body = """
[[session]]
name = "slow"
command = "sleep 30"

[[session]]
name = "waiter"
command = "true"
depends_on = ["slow"]

[[session]]
name = "after"
command = "true"
depends_on = ["waiter"]
"""
    async with running(tmp_path, body) as engine:
        await wait_state(engine, "slow", S.ACTIVE)
        await engine.terminate("waiter")
        assert engine.session_info("waiter").state is S.TERMINATED
        assert engine.session_info("after").state is S.SKIPPED
        await engine.terminate("slow")
