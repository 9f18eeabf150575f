"""The run's verdict and `summary.json`, the machine-readable record of a run.

Verdict rules, first match wins:

* aborted / halted: the scheduler stopped the run (a critical session failed, or the
  failure rate crossed max_failure_rate) and no restart lifted it;
* stopped: the operator stopped the run (Ctrl-C, SIGTERM, `swarmdeck stop`, "stop all")
  before every session was final: not a failure, and not a success either (ok false);
* failed: a critical session did not complete, or (with `min_success`) fewer than
  `min_success` non-critical sessions completed, or (without it) any session did not;
* partial: `min_success` is met but some non-critical sessions did not complete;
* succeeded: every session completed.

A daemon (a service, `daemon = true`) stopped because the rest of the run was done counts
as completed: stopping it is how the run ends, not a failure.

Times are Unix seconds; durations are seconds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from engine.states import SessionState

if TYPE_CHECKING:
    from engine.deck.spec import DeckSpec
    from engine.sessions.info import SessionInfo


RUN_DONE = "the run is done"
"""Why the scheduler stops the daemons still running once every other session is final."""


def counts_as_done(info: SessionInfo) -> bool:
    """Completed, or a daemon stopped because the run was done."""
    if info.state is SessionState.COMPLETED:
        return True
    ended = info.state is SessionState.TERMINATED and info.reason.startswith(RUN_DONE)
    return info.daemon and ended


@dataclass(frozen=True)
class Verdict:
    ok: bool
    outcome: str  # succeeded | partial | failed | aborted | halted | stopped
    reason: str
    succeeded: int
    total: int
    not_completed: list[dict[str, str]] = field(default_factory=list)


def verdict(
    deck: DeckSpec, infos: list[SessionInfo], stopped: str | None, by_operator: str | None = None
) -> Verdict:
    finished = [i for i in infos if counts_as_done(i)]
    missing = [
        {"session": i.name, "state": str(i.state), "reason": i.reason}
        for i in infos
        if not counts_as_done(i)
    ]
    count = len(finished)
    if by_operator is not None and stopped is None and count < len(infos):
        reason = f"{by_operator}: {count} of {len(infos)} sessions had completed"
        return Verdict(False, "stopped", reason, count, len(infos), missing)
    outcome, reason = _outcome(deck, infos, stopped, count)
    ok = outcome in ("succeeded", "partial")
    return Verdict(ok, outcome, reason, count, len(infos), missing)


def _outcome(
    deck: DeckSpec, infos: list[SessionInfo], stopped: str | None, done: int
) -> tuple[str, str]:
    if stopped is not None:
        return ("halted" if stopped.startswith("run halted") else "aborted"), stopped
    critical = [i.name for i in infos if i.critical and not counts_as_done(i)]
    if critical:
        return "failed", f"critical session(s) did not complete: {', '.join(critical)}"
    if done == len(infos):
        return (
            "succeeded",
            f"all {_sessions(done)} completed" if done != 1 else "the session completed",
        )
    if deck.min_success is None:
        return "failed", f"{len(infos) - done} of {len(infos)} sessions did not complete"
    optional = [i for i in infos if not i.critical]
    met = sum(counts_as_done(i) for i in optional)
    if met >= deck.min_success:
        return (
            "partial",
            f"{_sessions(met, 'non-critical')} completed (min_success {deck.min_success})",
        )
    return (
        "failed",
        f"only {_sessions(met, 'non-critical')} completed (min_success {deck.min_success})",
    )


def build_summary(deck: DeckSpec, infos: list[SessionInfo], result: Verdict) -> dict[str, Any]:
    """The summary.json document (the caller adds pool and scheduler figures)."""
    return {
        "deck": deck.name,
        "deck_file": str(deck.path),
        "ok": result.ok,
        "verdict": asdict(result),
        "sessions": [_session(info) for info in infos],
    }


def _sessions(count: int, kind: str = "") -> str:
    """`2 sessions`, `1 non-critical session`: never "1 sessions"."""
    noun = "session" if count == 1 else "sessions"
    return f"{count} {kind} {noun}" if kind else f"{count} {noun}"


def _session(info: SessionInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "template": info.template,
        "replica": info.replica,
        "priority": info.priority,
        "critical": info.critical,
        "daemon": info.daemon,
        "depends_on": list(info.depends_on),
        "command": info.command,
        "state": str(info.state),
        "reason": info.reason,
        "exit_code": info.exit_code,
        "signal": info.signal,
        "attempts": [a.model_dump(mode="json") for a in info.attempts],
        "attempt_count": info.attempt_count,
        "queued_at": info.queued_at,
        "started_at": info.first_started_at,
        "ended_at": info.attempts[-1].ended_at if info.attempts else None,
        "queue_wait": info.queue_wait,
        "run_time": info.run_time,
        "workspace": str(info.workspace) if info.workspace else None,
    }
