"""What one attempt of a session runs: the job (argv, environment, cwd, size) from its spec.

Every job gets `SWARMDECK_SESSION`, `SWARMDECK_RUN_DIR`, `SWARMDECK_ATTEMPT` (and
`SWARMDECK_REPLICA`/`SWARMDECK_REPLICAS`, `SWARMDECK_WORKSPACE` when they apply) on top of
the session's deck env, then what the engine adds per session (bus access). The cwd is the
isolated workspace, else the session's `cwd`, else the deck's directory. On a fresh
terminal the pool's `init` runs first in the pool's shell and then execs the command; a
pooled terminal ran it once, when it was warmed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.terminals.terminal import TERM, Job

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from engine.deck.spec import DeckSpec, PoolSpec, SessionSpec


@dataclass(frozen=True)
class Attempt:
    """Which attempt of which copy of a session, and where it runs."""

    number: int
    replica: tuple[int, int] | None  # (index, count)
    workspace: Path | None
    cols: int
    rows: int


def session_job(
    spec: SessionSpec, deck: DeckSpec, run_dir: Path, attempt: Attempt, extra: Mapping[str, str]
) -> Job:
    env = dict(spec.env)
    env.update(
        SWARMDECK_SESSION=spec.name,
        SWARMDECK_RUN_DIR=str(run_dir),
        SWARMDECK_ATTEMPT=str(attempt.number),
        TERM=TERM,
    )
    if attempt.replica is not None:
        index, count = attempt.replica
        env.update(SWARMDECK_REPLICA=str(index), SWARMDECK_REPLICAS=str(count))
    if attempt.workspace is not None:
        env.update(SWARMDECK_WORKSPACE=str(attempt.workspace))
    env.update(extra)
    cwd = working_dir(spec, deck, attempt.workspace)
    return Job(spec.argv(deck.pool.shell), env, str(cwd), attempt.cols, attempt.rows)


def working_dir(spec: SessionSpec, deck: DeckSpec, workspace: Path | None = None) -> Path:
    """Where a session runs: its isolated workspace, else its cwd, else the deck's directory."""
    return workspace or spec.cwd or deck.directory


def fresh_job(job: Job, pool: PoolSpec) -> Job:
    """The job for a fresh terminal: the pool's init first, then exec the command."""
    if not pool.init.strip():
        return job
    script = pool.init + '\nexec "$@"'
    argv = [pool.shell, "-c", script, "swarmdeck", *job.argv]
    return Job(argv, job.env, job.cwd, job.cols, job.rows)
