"""`swarmdeck run --headless`: the engine with a live table (TTY) or plain lines (a log:
one line per event, never wrapped or cut, whatever the width), then a summary (the same
facts as summary.json: attempts, exit, queue wait, run time, reason, workspace, verdict).
Ctrl-C / SIGTERM / SIGHUP stop every session cleanly; a second kills."""

from __future__ import annotations

import signal
import sys
import time
from typing import TYPE_CHECKING

import anyio
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.theme import Theme

from engine import (
    FINAL_STATES,
    ParallelismAdjusted,
    RunAborted,
    SessionDetailChanged,
    SessionState,
    SessionStateChanged,
    SwarmdeckError,
    open_engine,
)
from themes import DEFAULT_THEME, all_themes
from tui.cli.figures import balance_lines, contention_line, contention_lines

if TYPE_CHECKING:
    from pathlib import Path

    from engine import DeckSpec, Engine, SessionInfo


def console_theme(name: str = DEFAULT_THEME) -> Theme:
    """Rich styles from a swarmdeck theme's variables, so colours stay in the theme files:
    `state.<state>` (final states bold), `verdict.<outcome>` and `notice`."""
    theme = next(t for t in all_themes() if t.name == name)
    colour = theme.variables
    styles = {
        f"state.{s}": f"bold {colour[f'state-{s}']}" if s in FINAL_STATES else colour[f"state-{s}"]
        for s in SessionState
    }
    styles["verdict.succeeded"] = f"bold {colour['state-completed']}"
    styles["verdict.partial"] = f"bold {theme.warning}"
    styles["verdict.failed"] = f"bold {colour['state-failed']}"
    styles["verdict.stopped"] = f"bold {theme.warning}"
    styles["notice"] = str(theme.warning)
    return Theme(styles)


def _runtime(info: SessionInfo) -> str:
    if info.started_at is None:
        return ""
    return f"{(info.ended_at or time.time()) - info.started_at:6.1f}s"


def session_table(engine: Engine, title: str) -> Table:
    table = Table(title=title, expand=False)
    for col in ("session", "state", "pid", "time", "outcome", "last line"):
        table.add_column(col, no_wrap=True, overflow="ellipsis", max_width=60)
    for info in engine.list_sessions():
        lines = [ln for ln in engine.sessions[info.name].screen.text() if ln.strip()]
        table.add_row(
            info.name,
            f"[state.{info.state}]{info.detail or info.state}[/]",
            str(info.pid or ""),
            _runtime(info),
            info.reason,
            lines[-1][:60] if lines else "",
        )
    return table


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:6.2f}s"


def _exit(info: SessionInfo) -> str:
    if info.signal is not None:
        return f"sig {info.signal}"
    return "" if info.exit_code is None else str(info.exit_code)


def summary_table(engine: Engine) -> Table:
    """One row per session, as in summary.json."""
    table = Table(title="summary", expand=False)
    for col in ("session", "state", "tries", "exit", "wait", "run", "reason", "workspace"):
        table.add_column(col, no_wrap=True, overflow="ellipsis", max_width=50)
    for info in engine.list_sessions():
        isolated = engine.sessions[info.name].spec.workspace.isolated
        table.add_row(
            info.name,
            f"[state.{info.state}]{info.state}[/]",
            str(info.attempt_count),
            _exit(info),
            _seconds(info.queue_wait),
            _seconds(info.run_time),
            info.reason,
            str(info.workspace) if isolated else "",
        )
    return table


def summary_lines(engine: Engine) -> list[str]:
    """The summary for a log (not a terminal): one line per session, every value whole."""
    lines = []
    for info in engine.list_sessions():
        isolated = engine.sessions[info.name].spec.workspace.isolated
        fields = {
            "state": str(info.state), "tries": str(len(info.attempts)), "exit": _exit(info),
            "wait": _seconds(info.queue_wait).strip(), "run": _seconds(info.run_time).strip(),
            "workspace": str(info.workspace) if isolated else "",
        }  # fmt: skip
        shown = " ".join(f"{key}={value}" for key, value in fields.items() if value)
        lines.append(f"summary: {info.name} {shown}" + (f" — {info.reason}" if info.reason else ""))
    return lines


def verdict_line(engine: Engine) -> str:
    v = engine.verdict()
    style = v.outcome if v.outcome in ("succeeded", "partial", "stopped") else "failed"
    counts = f"({v.succeeded}/{v.total} completed)"
    return f"verdict: [verdict.{style}]{v.outcome}[/] — {v.reason} {counts}"


def scheduler_line(engine: Engine) -> str:
    s = engine.scheduler_statistics()
    return (
        f"scheduler: max_parallel {s.max_parallel}, {s.completed} completed, {s.failed} failed, "
        f"{s.skipped} skipped, {s.retried} retries, queue wait mean "
        f"{s.queue_wait_mean * 1000:.1f} ms / p95 {s.queue_wait_p95 * 1000:.1f} ms"
    )


def pool_line(engine: Engine) -> str:
    s = engine.pool_statistics()
    return (
        f"terminals: {s.in_use}/{s.capacity} in use, {s.idle} idle, {s.leases} leases, "
        f"{s.recycled} recycled, start-up p95 {s.wait_p95 * 1000:.1f} ms"
    )


async def _live_view(engine: Engine, console: Console) -> None:
    with Live(console=console, auto_refresh=False, transient=True) as live:
        while True:
            title = contention_line(engine.contention_statistics())
            live.update(session_table(engine, title), refresh=True)
            await anyio.sleep(0.25)


async def _plain_view(engine: Engine, console: Console) -> None:
    with engine.subscribe() as events:
        async for event in events:
            stamp = time.strftime("%H:%M:%S", time.localtime(event.at))
            if isinstance(event, SessionStateChanged):
                line = f"{stamp} {event.session:<16} {event.new:<10} {event.reason}"
                console.print(line.rstrip(), markup=False)
            elif isinstance(event, SessionDetailChanged) and event.detail:
                line = f"{stamp} {event.session:<16} {event.detail}"
                console.print(line, markup=False)
            elif isinstance(event, RunAborted | ParallelismAdjusted):
                console.print(f"{stamp} [bold]{event.reason}[/]")


async def _signals(engine: Engine, console: Console, stopped: list[int], stop: anyio.Event) -> None:
    """The first signal starts a graceful stop in the background (`stop` is set once it
    is done), so the next one is read at once: it raises KeyboardInterrupt, the engine is
    left without its graceful stop and its pool SIGKILLs every session's process groups
    (the warden whatever they left)."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        async with anyio.create_task_group() as tg:
            async for signum in signals:
                if stopped:
                    tg.cancel_scope.cancel()  # the graceful stop, abandoned
                    break
                stopped.append(signum)
                console.print("[notice]stopping every session (again to kill)…[/]")
                tg.start_soon(_stop_all, engine, stop)
    raise KeyboardInterrupt  # second signal: kill everything now (raised outside that group)


async def _stop_all(engine: Engine, stop: anyio.Event) -> None:
    await engine.terminate_all()
    stop.set()


async def _main(deck: DeckSpec, run_dir: Path | None, console: Console) -> int:
    stopped: list[int] = []
    stop = anyio.Event()
    async with open_engine(deck, run_dir) as engine:
        console.print(f"swarmdeck: run directory {engine.run_dir}")
        async with anyio.create_task_group() as tg:
            view = _live_view if console.is_terminal else _plain_view
            tg.start_soon(view, engine, console)
            tg.start_soon(_signals, engine, console, stopped, stop)
            await engine.start_all()
            await engine.wait_finished()
            if deck.exit_when == "never" and not stop.is_set():
                console.print(f"swarmdeck: {verdict_line(engine)}; exit_when = never: Ctrl-C ends")
                await stop.wait()  # restarts and forks are for a room: nothing to wait for
            tg.cancel_scope.cancel()
        if console.is_terminal:
            console.print(summary_table(engine))
        else:  # a CI log: no table squeezed to 80 columns, no name cut short
            for line in summary_lines(engine):
                console.print(line, markup=False)
        console.print(verdict_line(engine))
        console.print(scheduler_line(engine))
        console.print(pool_line(engine))
        for line in contention_lines(engine.contention_history()):
            console.print(line, markup=False)
        for line in balance_lines(engine.bus_statistics().balance):
            console.print(line, markup=False)
        ok = engine.ok
        run_dir = engine.run_dir
    console.print(f"swarmdeck: summary in {run_dir / 'summary.json'}")
    if stopped:
        return 128 + stopped[0]
    return 0 if ok else 1


def run_headless(deck: DeckSpec, run_dir: Path | None = None) -> int:
    # Not a terminal: one line per event, never wrapped (soft_wrap), whatever the width.
    terminal = sys.stdout.isatty()
    console = Console(highlight=False, theme=console_theme(), soft_wrap=not terminal)
    try:
        return anyio.run(_main, deck, run_dir, console)
    except SwarmdeckError as exc:  # the engine could not start (its run dir, its NATS server)
        print(f"swarmdeck run: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("swarmdeck: killed every session", file=sys.stderr)
        return 130
