"""Hostile jobs on real PTYs: none can wedge or poison a terminal for the jobs after it."""

from __future__ import annotations

import os
import signal
import termios
from typing import TYPE_CHECKING

import anyio
import pytest

from engine.deck.spec import PoolSpec
from engine.states import SessionState as S
from engine.terminals.pool import open_pool
from engine.terminals.pooled import PooledTerminal
from engine.terminals.replies import REPLY_CAP
from tests.support import running, wait_text

if TYPE_CHECKING:
    from pathlib import Path

    from engine.engine import Engine

pytestmark = pytest.mark.anyio

ONE_TERMINAL = "size = 1\nwarm = 1"
AFTER = '[[session]]\nname = "b"\ncommand = "echo AFTER"\n'
# Reads whatever waits in its input (nothing is typed), then says how many bytes it got.
LEAK_PROBE = "stty -icanon -echo min 0 time 3; n=$(head -c 1000000 | wc -c); echo leaked=$n"


def _session(name: str, command: str, extra: str = "") -> str:
    return f"[[session]]\nname = \"{name}\"\ncommand = '''{command}'''\n{extra}\n"


def _text(engine: Engine, name: str) -> str:
    return "\n".join(engine.sessions[name].screen.text())


async def _finish(engine: Engine, timeout: float = 30) -> None:
    with anyio.fail_after(timeout):
        await engine.wait_finished()


# -- 1: stopped output ----------------------------------------------------------------------
async def test_a_job_that_stops_tty_output_leaves_its_terminal_usable(tmp_path: Path) -> None:
    stop = "python3 -c 'import termios; termios.tcflow(1, termios.TCOOFF)'"
    async with running(tmp_path, _session("a", stop, 'timeout = "20s"') + AFTER, ONE_TERMINAL) as e:
        await _finish(e)
        a, b = e.sessions["a"], e.sessions["b"]
        assert (a.state, b.state) == (S.COMPLETED, S.COMPLETED)
        assert "AFTER" in _text(e, "b")
        assert a.terminal is b.terminal  # output restarted: the terminal was reused


async def test_ctrl_s_typed_into_a_pane_does_not_wedge_its_terminal(tmp_path: Path) -> None:
    body = _session("a", "echo typing; head -c 1 >/dev/null") + AFTER
    async with running(tmp_path, body, ONE_TERMINAL) as engine:
        await wait_text(engine, "a", "typing")
        await engine.send_input("a", b"\x13")  # XOFF: the line discipline stops output
        await engine.send_input("a", b"\r")  # head reads its line and exits
        await _finish(engine)
        assert engine.sessions["a"].state is S.COMPLETED
        assert "AFTER" in _text(engine, "b")


# Waits for a line, then fills the PTY's output buffer to the last byte and exits (the
# kernel moves bytes between its two buffers a moment later: fill until nothing fits).
FILL = """python3 -c '
import os, sys, time
print("ready", flush=True)
sys.stdin.readline()
os.set_blocking(1, False)
for _ in range(50):
    wrote = 0
    for size in (65536, 4096, 1):
        try:
            while True:
                wrote += os.write(1, b"x" * size)
        except BlockingIOError:
            pass
    if not wrote:
        break
    time.sleep(0.1)
'"""


async def test_a_terminal_whose_end_marker_cannot_get_through_is_replaced(
    tmp_path: Path,
) -> None:
    """Nothing reads the PTY (the relay is stopped) and the job filled it: the launcher
    cannot write the end marker, gives up after its deadline, and the terminal is
    discarded rather than reused."""
    async with running(tmp_path, _session("a", FILL) + AFTER, ONE_TERMINAL) as engine:
        await wait_text(engine, "a", "ready")
        relay, term = engine.pool._relay, engine.sessions["a"].terminal
        assert relay is not None
        assert term is not None
        os.kill(relay.pid, signal.SIGSTOP)
        try:
            await engine.send_input("a", b"go\r")
            with anyio.fail_after(30):  # until the launcher reports it could not restore
                while term.reusable:
                    await anyio.sleep(0.05)
        finally:
            os.kill(relay.pid, signal.SIGCONT)
        await _finish(engine)
        a, b = engine.sessions["a"], engine.sessions["b"]
        assert a.state is S.COMPLETED
        assert b.state is S.COMPLETED
        assert "AFTER" in _text(engine, "b")
        assert a.terminal is not b.terminal
        assert engine.pool.statistics().recycled >= 1


async def test_terminate_and_the_queue_do_not_wait_for_a_wedged_launcher(tmp_path: Path) -> None:
    body = _session("a", "echo started; sleep 300", 'stop_grace = "0.2s"') + AFTER
    async with running(tmp_path, body, ONE_TERMINAL) as engine:
        await wait_text(engine, "a", "started")
        term = engine.sessions["a"].terminal
        assert isinstance(term, PooledTerminal)
        assert term.launcher_pid is not None
        os.kill(term.launcher_pid, signal.SIGSTOP)  # it will report nothing
        with anyio.fail_after(30):
            await engine.terminate("a")
        a = engine.sessions["a"]
        assert a.state is S.TERMINATED
        assert "unknown" in a.reason
        await _finish(engine)
        assert "AFTER" in _text(engine, "b")
        assert engine.sessions["b"].terminal is not term


# -- 2: file status flags -------------------------------------------------------------------
async def test_o_nonblock_set_by_one_job_does_not_reach_the_next(tmp_path: Path) -> None:
    body = _session("a", "python3 -c 'import os; os.set_blocking(0, False)'") + _session(
        "b", "python3 -c 'import os; print(\"blocking\", os.get_blocking(0))'"
    )
    async with running(tmp_path, body, ONE_TERMINAL) as engine:
        await _finish(engine)
        assert engine.sessions["a"].terminal is engine.sessions["b"].terminal
        assert "blocking True" in _text(engine, "b")


async def test_the_health_check_fails_a_terminal_whose_tty_modes_changed_while_idle() -> None:
    async with open_pool(PoolSpec(size=1, warm=1)) as pool:
        term = await pool.acquire()
        assert isinstance(term, PooledTerminal)
        assert await term.check_health()
        assert term.launcher_pid is not None
        fd = os.open(f"/proc/{term.launcher_pid}/fd/0", os.O_RDWR | os.O_NOCTTY)
        try:
            modes = termios.tcgetattr(fd)
            modes[3] &= ~termios.ICANON
            termios.tcsetattr(fd, termios.TCSANOW, modes)
        finally:
            os.close(fd)
        assert not await term.check_health()
        pool.release(term, reusable=False)


# -- 3: answers to terminal queries ---------------------------------------------------------
async def test_answers_a_program_never_reads_are_bounded_and_reach_no_later_job(
    tmp_path: Path,
) -> None:
    ask = (
        "python3 -c \"import sys, time; sys.stdout.write('\\033[c' * 100000);"
        " print('asked', flush=True); time.sleep(300)\""
    )
    body = _session("a", ask, 'stop_grace = "0.2s"') + _session("b", LEAK_PROBE)
    async with running(tmp_path, body, ONE_TERMINAL) as engine:
        await wait_text(engine, "a", "asked", timeout=30)
        term = engine.sessions["a"].terminal
        assert term is not None
        assert term.kind != "remote"
        replies = term.reply_statistics()
        assert replies.pending <= REPLY_CAP
        assert replies.dropped > 500_000  # 100,000 answers of 10 bytes, most never written
        await engine.terminate("a")
        await _finish(engine)
        assert "leaked=0" in _text(engine, "b")


async def test_answers_to_an_ended_jobs_queries_are_neither_echoed_nor_typed_ahead(
    tmp_path: Path,
) -> None:
    asks = [f"ask{i}" for i in range(5)]
    body = "".join(_session(name, "printf '\\033[c\\033[6n'; exit") for name in asks)
    body += _session("probe", LEAK_PROBE)
    async with running(tmp_path, body, ONE_TERMINAL) as engine:
        await _finish(engine, timeout=60)
        for name in [*asks, "probe"]:
            text = _text(engine, name)
            assert "^[" not in text, name
            assert "62;22c" not in text, name
        assert "leaked=0" in _text(engine, "probe")


async def test_an_answer_asked_for_in_cooked_mode_waits_until_the_script_reads_it(
    tmp_path: Path,
) -> None:
    """Asked in canonical mode with echo, read once `read -s -d R` turns both off: the
    answer arrives then, and nothing is echoed."""
    ask = "printf '\\033[6n'; sleep 0.2; IFS= read -rs -t 10 -d R r; echo \"got=${r#*[}\""
    async with running(tmp_path, _session("ask", ask), ONE_TERMINAL) as engine:
        await _finish(engine)
        text = _text(engine, "ask")
        assert "got=1;1" in text
        assert "^[" not in text


# -- 4: retries -----------------------------------------------------------------------------
async def test_a_retry_starts_from_a_reset_screen(tmp_path: Path) -> None:
    """Attempt 1 leaves the line-drawing charset, no autowrap and the alternate screen."""
    command = (
        'if [ "$SWARMDECK_ATTEMPT" = 1 ]; then\n'
        "  printf '\\033(0\\033[?7l\\033[?1049h'; exit 1\n"
        "fi\n"
        "printf '%090d\\n' 0"
    )
    extra = 'retries = 1\nbackoff = { initial = "0s" }\ncols = 80'
    async with running(tmp_path, _session("job", command, extra), ONE_TERMINAL) as engine:
        await _finish(engine)
        job = engine.sessions["job"]
        assert job.state is S.COMPLETED
        lines = job.screen.text()
        assert "--- attempt 2 ---" in lines
        assert "0" * 80 in lines  # autowrap is on again: 90 zeros take two rows
        assert "0" * 10 in lines
        assert not job.screen.alternate


# -- 5: IUTF8 -------------------------------------------------------------------------------
@pytest.mark.parametrize("terminal", ["pooled", "fresh"])
async def test_backspace_in_canonical_mode_erases_a_whole_character(
    tmp_path: Path, terminal: str
) -> None:
    """The pooled terminal's first job turns IUTF8 off: the restore turns it back on."""
    read = 'echo ready; read -r line; echo "got=[$line]"'
    body = _session("spoil", "stty -iutf8", f'terminal = "{terminal}"')
    body += _session("typed", read, f'terminal = "{terminal}"\ndepends_on = ["spoil"]')
    async with running(tmp_path, body, ONE_TERMINAL) as engine:
        await wait_text(engine, "typed", "ready")
        await engine.send_input("typed", "aé\x7f世\x7fb\r".encode())
        await _finish(engine)
        assert "got=[ab]" in _text(engine, "typed")
