"""Control-room figures under a flood: frames painted, app CPU, key-to-screen latency, GC.

Why a real `swarmdeck run` in a tmux pane (200x55) and not `App.run_test()`: the headless
driver writes nothing and the pilot injects keys in-process, so it would skip the two costs
a user pays, turning each frame into terminal bytes (Textual's writer thread) and parsing
keys from the tty. Here the app runs unchanged in its own process; this module, re-run as
its child (`--child`), only wraps three methods before `run_control_room`:

* `TerminalPane.render_line`: counts lines built, and notes the text of the `echo` pane's
  cursor row whenever it is rebuilt;
* `ControlRoom.post_display_hook` (Textual calls it after writing a frame to the driver): one
  `F` log line per frame painted, plus an `E` line with that cursor-row text if it was part
  of the frame, so a key counts as on screen only once the frame holding its echo is out;
* `ControlRoom.on_mount`: applies the GC arm, logs GC pauses (`gc.callbacks`) and runs an
  event-loop stall probe (lateness of a 10 ms sleep).

Keys go through one tmux control-mode client (no process start per key); both sides stamp
`time.monotonic()`, which is system-wide. CPU and RSS come from /proc for the app process.
Eight sessions replay a coloured corpus (bench/ingest.py's: SGR 16/256/truecolor, UTF-8,
`\\r` progress bars) paced to ~1 MB/s each; a ninth runs `cat`, focused, for the keys.

Arms `app`, `default`, `freeze`, `tuned`: the engine in the app's process (`open_engine`),
under a GC setting. Arm `served`: the product path of `swarmdeck run`, the engine in its own
process (`swarmdeck serve DECK`, with a private XDG_RUNTIME_DIR) and the room attached over
the control socket (`open_remote_engine` + `run_control_room`, the app's own GC); its
service CPU is reported too, and the service is stopped (SIGTERM) after the arm.

    python -m bench.ui [--quick] [--arms default,tuned,served] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import IO, TYPE_CHECKING

import anyio

from bench.ingest import write_corpus
from engine.remote.runtime import Registration

if TYPE_CHECKING:
    from collections.abc import Callable

    from textual.strip import Strip

    from engine.deck.spec import DeckSpec
    from engine.remote.remote_engine import RemoteEngine
    from tui.app import ControlRoom
    from tui.widgets.terminal_pane import TerminalPane

COLS, ROWS = 200, 55
FLOODS = 8
RATE = 1_000_000
ECHO = "echo"
LOST = 10.0  # s: a key not painted by then counts as this late
TYPED = "0123456789acdeghilmouvwxy"  # no room bindings among them, should focus be lost
ROOT = Path(__file__).resolve().parent.parent
SERVED = "served"  # the arm whose engine is a separate `swarmdeck serve` process
GEN = """\
import os, sys, time
corpus, gate, counter, offset = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
data = open(corpus, "rb").read()
while not os.path.exists(gate + "/go"):
    if not os.path.isdir(gate):
        sys.exit(0)
    time.sleep(0.05)
pos, sent, t0, noted = offset % len(data), 0, time.monotonic(), 0.0
while not os.path.exists(gate + "/stop"):
    delay = t0 + sent / {rate} - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    piece = data[pos : pos + 8192] or data[:8192]
    pos = (pos + len(piece)) % len(data)
    view = memoryview(piece)
    while view:
        view = view[os.write(1, view):]
    sent += len(piece)
    if time.monotonic() - noted > 0.25:
        noted = time.monotonic()
        open(counter, "w").write(str(sent))
open(counter, "w").write(str(sent))
"""


# -- the child: the real app, instrumented ------------------------------------------------
def _child(deck_path: Path, log_path: Path, arm: str, profile: Path | None) -> int:
    from engine.deck.spec import load_deck
    from tui.app import ControlRoom
    from tui.widgets.terminal_pane import TerminalPane

    log = log_path.open("a", buffering=1)
    seen = {"lines": 0}
    echo: list[str] = []
    render_line = TerminalPane.render_line

    def counted(self: TerminalPane, y: int) -> Strip:
        strip = render_line(self, y)
        seen["lines"] += 1
        if self.session == ECHO and y == self._cursor[0] and not self.in_history:
            echo[:] = [strip.text.rstrip()]
        return strip

    def displayed(self: ControlRoom) -> None:
        now = time.monotonic()
        log.write(f"F {now:.6f} {seen['lines']} {self.message_queue_size}\n")
        seen["lines"] = 0
        if echo:
            log.write(f"E {now:.6f} {echo.pop()}\n")

    on_mount = ControlRoom.on_mount

    async def mounted(self: ControlRoom) -> None:
        await on_mount(self)
        _apply_gc("app" if arm == SERVED else arm, log)
        self.run_worker(_probe(log), name="bench-probe")
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, self.exit)
        log.write(f"R {time.monotonic():.6f}\n")

    TerminalPane.render_line = counted  # type: ignore[method-assign]
    ControlRoom.post_display_hook = displayed  # type: ignore[method-assign,assignment]
    ControlRoom.on_mount = mounted  # type: ignore[method-assign]
    deck = load_deck(deck_path)
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    if arm == SERVED:
        anyio.run(_served_room)
    else:
        anyio.run(_room, deck, log_path.parent / f"run-{arm}")
    if profiler and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    return 0


async def _room(deck: DeckSpec, run_dir: Path) -> None:
    """The in-process arms: the engine in the room's own process (`open_engine`), every
    session started. Not `swarmdeck run`'s path any more (it serves the engine and
    attaches: that is the `served` arm)."""
    from engine.engine import open_engine
    from tui.app import ControlRoom

    async with open_engine(deck, run_dir) as engine:
        await engine.start_all()
        await ControlRoom(engine).run_async()


async def _served_room() -> None:
    """What `swarmdeck run` does (it serves the deck's engine, then attaches): attach as
    operator over the control socket of the only engine in this (private) runtime directory."""
    from engine.remote.remote_engine import open_remote_engine
    from engine.remote.runtime import find_engine
    from tui.app import run_control_room

    entry = find_engine(None)
    client = f"bench.ui room (pid {os.getpid()})"
    remote: RemoteEngine
    async with open_remote_engine(Path(entry.socket), "operator", client=client) as remote:
        await run_control_room(remote, read_only=remote.role != "operator")


def _apply_gc(arm: str, log: IO[str]) -> None:
    """`default`: CPython's own; `freeze`: freeze what start-up built; `tuned`: and raise
    the thresholds as the app does (`tui.app.GC_THRESHOLDS`); `app`: whatever the app
    itself does."""
    from tui.app import GC_THRESHOLDS

    if arm != "app":
        gc.unfreeze()
        gc.set_threshold(*(GC_THRESHOLDS if arm == "tuned" else (700, 10, 10)))
    if arm in ("freeze", "tuned"):
        gc.freeze()
    started = [0.0]

    def pause(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            ms = (time.perf_counter() - started[0]) * 1e3
            log.write(f"G {time.monotonic():.6f} {info['generation']} {ms:.3f}\n")

    gc.callbacks.append(pause)


async def _probe(log: IO[str]) -> None:
    """Log how late a 10 ms sleep wakes: the event loop's stalls, whatever their cause."""
    while True:
        t0 = time.perf_counter()
        await asyncio.sleep(0.01)
        lag = (time.perf_counter() - t0 - 0.01) * 1e3
        log.write(f"S {time.monotonic():.6f} {lag:.3f}\n")


# -- the bench side -----------------------------------------------------------------------
class Log:
    """Incremental reader of the child's log."""

    def __init__(self, path: Path) -> None:
        path.touch()
        self.file = path.open()
        self.frames: list[tuple[float, int, int]] = []
        self.echoes: list[tuple[float, str]] = []
        self.stalls: list[tuple[float, float]] = []
        self.pauses: list[tuple[float, int, float]] = []
        self.ready = False
        self._partial = ""

    def pump(self) -> None:
        *lines, self._partial = (self._partial + self.file.read()).split("\n")
        for line in lines:
            kind, rest = line[0], line[2:]
            if kind == "F":
                t, n, queued = rest.split()
                self.frames.append((float(t), int(n), int(queued)))
            elif kind == "E":
                t, _, text = rest.partition(" ")
                self.echoes.append((float(t), text))
            elif kind == "S":
                t, lag = rest.split()
                self.stalls.append((float(t), float(lag)))
            elif kind == "G":
                t, gen, ms = rest.split()
                self.pauses.append((float(t), int(gen), float(ms)))
            elif kind == "R":
                self.ready = True

    def wait_echo(self, text: str, since: float, timeout: float = 5.0) -> float:
        """When the first frame showing `text` on the echo row after `since` was painted."""
        deadline, checked = time.monotonic() + timeout, 0
        while time.monotonic() < deadline:
            self.pump()
            for t, shown in self.echoes[checked:]:
                if t >= since and shown == text:
                    return t
            checked = len(self.echoes)
            time.sleep(0.001)
        raise TimeoutError(f"echo {text!r} never painted")


class Room:
    """`swarmdeck run` (instrumented) in a private tmux server, keys via control mode."""

    def __init__(
        self,
        tmp: Path,
        arm: str,
        profile: Path | None,
        service: Service | None = None,
        size: tuple[int, int] = (COLS, ROWS),
    ) -> None:
        self.name = f"swarmdeck-bench-ui-{os.getpid()}"
        self.tmux = ["tmux", "-L", self.name, "-f", "/dev/null"]
        self.log = Log(tmp / "log")
        self.typed = ""  # what the echo pane's cursor row shows
        self.service = service
        child = [sys.executable, "-m", "bench.ui", "--child", str(tmp / "deck.toml")]
        child += [str(tmp / "log"), arm] + ([str(profile)] if profile else [])
        if service is not None:  # the room finds the engine in the service's runtime dir
            child = ["env", "-u", "SWARMDECK_RUNTIME_DIR", *service.env_args, *child]
        command = f"cd {ROOT} && exec {' '.join(child)}"  # Textual paints on stderr
        self.pid = self._open_pane(command, size)

    def _open_pane(self, command: str, size: tuple[int, int]) -> int:
        """The private tmux server's one pane running `command`, and the control client
        that sends keys; the pane's process id."""
        cols, rows = size
        self.run("new-session", "-d", "-s", "main", "-x", str(cols), "-y", str(rows), command)
        pid = int(self.run("display-message", "-p", "-t", "main", "#{pane_pid}"))
        self.server = int(self.run("display-message", "-p", "#{pid}"))
        self.control = subprocess.Popen(
            [*self.tmux, "-C", "attach-session", "-t", "main"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        self.command("refresh-client -f no-output")
        return pid

    def run(self, *args: str) -> str:
        return subprocess.run([*self.tmux, *args], capture_output=True, text=True).stdout

    def wait_screen(self, check: Callable[[str], bool], timeout: float = 60) -> None:
        """Poll the pane's text (set-up only: capture-pane is too slow to time keys)."""
        deadline = time.monotonic() + timeout
        while not check(self.run("capture-pane", "-p", "-t", "main")):
            if time.monotonic() > deadline:
                raise TimeoutError("the room never reached the expected screen")
            time.sleep(0.2)

    def command(self, line: str) -> None:
        assert self.control.stdin is not None
        self.control.stdin.write(line + "\n")
        self.control.stdin.flush()

    def key(self, key: str) -> float:
        """Send one key (a tmux key name); the time just before it left for tmux."""
        t0 = time.monotonic()
        self.command(f"send-keys -t main {key}")
        return t0

    def close(self) -> None:
        """Quit the app (SIGUSR1: it exits, its engine stops the sessions), then tmux."""
        self._end(self.pid, signal.SIGUSR1, 30)

    def _end(self, pid: int, signum: int, timeout: float) -> None:
        """Signal the pane's process and wait (up to `timeout`) for it, then stop tmux."""
        if _alive(pid):
            os.kill(pid, signum)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.control.stdin is not None:
            self.control.stdin.close()
        self.control.wait(5)
        subprocess.run([*self.tmux, "kill-server"], capture_output=True, check=False)
        socket = Path(os.environ.get("TMUX_TMPDIR", "/tmp"), f"tmux-{os.getuid()}", self.name)
        socket.unlink(missing_ok=True)  # kill-server can leave the socket file behind


class Service:
    """`swarmdeck serve DECK` in the background (as `swarmdeck run` starts it), with a
    private XDG_RUNTIME_DIR: its registry entry and control socket live under `tmp`."""

    def __init__(self, tmp: Path, ssh: bool = False) -> None:
        self.xdg = tmp / "xdg"
        self.xdg.mkdir(mode=0o700)
        self.env_args = [f"XDG_RUNTIME_DIR={self.xdg}"]
        env = {k: v for k, v in os.environ.items() if k != "SWARMDECK_RUNTIME_DIR"}
        env["XDG_RUNTIME_DIR"] = str(self.xdg)
        run_dir = tmp / f"run-{SERVED}"
        self.log_path = tmp / "service.log"
        extra = self._ssh_args(tmp) if ssh else []
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tui.cli", "serve", str(tmp / "deck.toml"),
                 "--run-dir", str(run_dir), *extra],
                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.pid = self.process.pid
        try:
            self.entry = self._registered(self.xdg / "swarmdeck")
            if ssh:
                self.ssh_port = self._ssh_port()
        except BaseException:
            self.process.terminate()  # SIGTERM: the service stops its sessions, then exits
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            raise

    def _registered(self, root: Path, timeout: float = 30) -> Registration:
        """Wait for the service's registry entry (named after its socket) and the socket."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the service exited ({self.process.returncode}):\n{tail}")
            for path in root.glob("*.json"):
                try:
                    entry = Registration(**json.loads(path.read_text()))
                except (OSError, ValueError, TypeError):
                    continue
                if entry.pid == self.pid and Path(entry.socket).exists():
                    return entry
            time.sleep(0.05)
        raise RuntimeError(f"the service never registered; see {self.log_path}")

    def _ssh_args(self, tmp: Path) -> list[str]:
        """`--ssh` on a free loopback port with a throwaway operator key (`ssh_key`)."""
        keys = tmp / "keys"
        keys.mkdir(mode=0o700)
        self.ssh_key = keys / "operator"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.ssh_key)],
            check=True, capture_output=True,
        )  # fmt: skip
        public = self.ssh_key.with_suffix(".pub").read_text().strip()
        (keys / "authorized_keys").write_text(f'role="operator" {public}\n')
        return ["--ssh", "127.0.0.1:0", "--authorized-keys", str(keys / "authorized_keys"),
                "--host-key", str(keys / "host_key")]  # fmt: skip

    def _ssh_port(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_path.read_text(errors="replace").splitlines():
                if "ssh on 127.0.0.1:" in line:
                    return int(line.split("127.0.0.1:", 1)[1].split()[0])
            time.sleep(0.05)
        raise RuntimeError(f"the service never said its ssh port; see {self.log_path}")

    def stop(self) -> None:
        """SIGTERM (it stops every session, unregisters, removes its socket), then wait."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.pid, signal.SIGKILL)  # its own session (start_new_session)
            self.process.wait(10)
            raise RuntimeError(f"the service ignored SIGTERM; see {self.log_path}") from None
        text = self.log_path.read_text(errors="replace")
        if self.process.returncode not in (0, 1) or "Traceback" in text:  # 1: sessions stopped
            print(f"  service exited {self.process.returncode}:\n{text[-1000:]}", file=sys.stderr)
        left = [p for p in (Path(self.entry.socket), self.entry.path) if p.exists()]
        if left:
            print(f"  service left behind {left}", file=sys.stderr)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _active(screen: str) -> int:
    """Rows of the session list that say `active`."""
    return sum(line.split()[2:3] == ["active"] for line in screen.splitlines())


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _deck(tmp: Path) -> str:
    gen, corpus = tmp / "gen.py", tmp / "corpus.txt"
    gen.write_text(GEN.replace("{rate}", str(RATE)))
    write_corpus(corpus, 4 * RATE)
    sessions = [f'[[session]]\nname = "{ECHO}"\ncommand = "exec cat"\n']
    for n in range(FLOODS):
        argv = f"{sys.executable} {gen} {corpus} {tmp} {tmp}/count-{n} {n * 499_979}"
        sessions.append(
            f'[[session]]\nname = "flood-{n}"\ncommand = "exec {argv}"\nterminal = "fresh"\n'
        )
    pool = f"[pool]\nsize = {FLOODS + 1}\nwarm = 0\ncols = 66\nrows = 16\n"
    return f'name = "ui-bench"\n{pool}\n' + "\n".join(sessions)


def focus_echo(room: Room) -> None:
    """Enter on the list's first row (`echo`) types into its pane; retry until a key echoes."""
    for _ in range(10):
        room.key("Enter")
        time.sleep(0.5)
        try:
            room.log.wait_echo("0", room.key("0"), timeout=2)
        except TimeoutError:
            continue
        room.log.wait_echo("", room.key("Enter"))
        return
    raise TimeoutError("could not focus the echo pane")


def probe_keys(room: Room, count: int, gap: float) -> list[float]:
    """Key-to-paint latency (ms) of `count` keys typed into the focused `cat` pane."""
    latencies = []
    for n in range(count):
        if len(room.typed) >= 20:  # Enter (untimed): cat repeats the line, the row starts empty
            room.log.wait_echo("", room.key("Enter"))
            room.typed = ""
        char = TYPED[n % len(TYPED)]
        room.typed += char
        t0 = room.key(char)
        try:
            latencies.append((room.log.wait_echo(room.typed, t0, LOST) - t0) * 1e3)
        except TimeoutError:  # counted at the timeout; later keys still match once it shows
            latencies.append(LOST * 1e3)
        time.sleep(gap)
    return latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else float("nan")


def window(room: Room, tmp: Path, seconds: float, keys: int) -> dict[str, float]:
    """Everything over one timed window: keys typed during it, the rest from logs and /proc."""
    counts = [tmp / f"count-{n}" for n in range(FLOODS)]

    def sent() -> int:
        return sum(int(p.read_text() or 0) for p in counts if p.exists())

    room.log.pump()
    marks = (len(room.log.frames), len(room.log.stalls), len(room.log.pauses))
    engine = room.service.pid if room.service is not None else None
    eng0 = _cpu(engine) if engine is not None else 0.0
    t0, cpu0, srv0, bytes0 = time.monotonic(), _cpu(room.pid), _cpu(room.server), sent()
    latencies = probe_keys(room, keys, gap=0.03)
    time.sleep(max(t0 + seconds - time.monotonic(), 0))
    wall = time.monotonic() - t0
    cpu, srv, rate = _cpu(room.pid) - cpu0, _cpu(room.server) - srv0, sent() - bytes0
    eng = (_cpu(engine) - eng0) / wall * 100 if engine is not None else float("nan")
    room.log.pump()
    frames = room.log.frames[marks[0] :]
    stalls = [lag for _, lag in room.log.stalls[marks[1] :]]
    pauses = [ms for _, _, ms in room.log.pauses[marks[2] :]]
    return {
        "wall": wall, "fps": len(frames) / wall, "lines": sum(n for _, n, _ in frames) / wall,
        "queue": max((q for _, _, q in frames), default=0),
        "cpu": cpu / wall * 100, "tmux": srv / wall * 100, "mbs": rate / RATE / wall,
        "service": eng,
        "key50": pct(latencies, 0.5), "key95": pct(latencies, 0.95),
        "keymax": max(latencies), "keys": len(latencies), "rss": _rss_mb(room.pid),
        "stall50": pct(stalls, 0.5), "stall99": pct(stalls, 0.99), "stallmax": max(stalls),
        "gcn": len(pauses) / wall, "gc99": pct(pauses, 0.99),
        "gcmax": max(pauses, default=0.0),
    }  # fmt: skip


def run_arm(arm: str, quick: bool, profile: Path | None) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="swarmdeck-bench-ui-") as name:
        tmp = Path(name)
        (tmp / "deck.toml").write_text(_deck(tmp))
        service = Service(tmp) if arm == SERVED else None
        try:
            room = Room(tmp, arm, profile, service)
        except BaseException:
            if service is not None:
                service.stop()
            raise
        try:
            deadline = time.monotonic() + 20
            while not room.log.ready and time.monotonic() < deadline:
                room.log.pump()
                time.sleep(0.05)
            if not room.log.ready:
                err = tmp / "child.err"
                raise RuntimeError(err.read_text() if err.exists() else "app never ready")
            room.wait_screen(lambda text: _active(text) == FLOODS + 1)
            focus_echo(room)
            probe_keys(room, 3, gap=0.05)  # warm-up
            keys = 50 if quick else 100
            idle = window(room, tmp, 4 if quick else 8, keys)
            (tmp / "go").touch()
            time.sleep(1.5 if quick else 3)
            flood = window(room, tmp, 8 if quick else 20, keys)
            return {"idle": idle, "flood": flood}
        except TimeoutError as exc:
            screen = room.run("capture-pane", "-p", "-t", "main")
            raise RuntimeError(f"{exc}; echo rows seen {room.log.echoes[-5:]}:\n{screen}") from exc
        finally:
            (tmp / "stop").touch()
            try:
                room.close()
            finally:
                if service is not None:
                    service.stop()


ROWS_OUT = (
    ("frames painted / s", "fps", "{:.1f}"),
    ("pane lines built / s", "lines", "{:.0f}"),
    ("app message queue, max at a frame", "queue", "{:.0f}"),
    ("flood delivered, MB/s (8 sessions)", "mbs", "{:.2f}"),
    ("app CPU, % of one core", "cpu", "{:.0f}"),
    ("service CPU (served engine), %", "service", "{:.0f}"),
    ("tmux server CPU (the terminal), %", "tmux", "{:.0f}"),
    ("key-to-screen p50, ms", "key50", "{:.1f}"),
    ("key-to-screen p95, ms", "key95", "{:.1f}"),
    ("key-to-screen max, ms", "keymax", "{:.1f}"),
    ("loop stall p50 (10 ms sleep late by), ms", "stall50", "{:.1f}"),
    ("loop stall p99, ms", "stall99", "{:.1f}"),
    ("loop stall max, ms", "stallmax", "{:.1f}"),
    ("GC collections / s", "gcn", "{:.1f}"),
    ("GC pause p99, ms", "gc99", "{:.2f}"),
    ("GC pause max, ms", "gcmax", "{:.2f}"),
    ("RSS at the end, MB", "rss", "{:.0f}"),
)


def report(results: dict[str, dict[str, dict[str, float]]]) -> None:
    columns = [(arm, phase) for arm in results for phase in ("idle", "flood")]
    print(f"  {'':<42}" + "".join(f"{arm + ' ' + phase:>16}" for arm, phase in columns))
    for label, key, fmt in ROWS_OUT:
        values = [results[a][p][key] for a, p in columns]
        cells = "".join(f"{'-' if v != v else fmt.format(v):>16}" for v in values)  # NaN: -
        print(f"  {label:<42}{cells}")
    for arm, phases in results.items():
        flood = phases["flood"]
        print(
            f"  {arm}: key p95 during the flood {flood['key95']:.1f} ms (target <= 50: "
            f"{'met' if flood['key95'] <= 50 else 'MISSED'}); app CPU {flood['cpu']:.0f} % "
            f"(target < 100: {'met' if flood['cpu'] < 100 else 'MISSED'})"
        )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        profile = Path(sys.argv[5]) if len(sys.argv) > 5 else None
        log = Path(sys.argv[3])
        try:
            raise SystemExit(_child(Path(sys.argv[2]), log, sys.argv[4], profile))
        except Exception:
            (log.parent / "child.err").write_text(traceback.format_exc())
            raise
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="app,served; short windows")
    parser.add_argument("--arms", default="", help="app,default,freeze,tuned (GC); served")
    parser.add_argument("--profile", action="store_true", help="cProfile the app (last arm)")
    args = parser.parse_args()
    quick, full = ["app", SERVED], ["default", "tuned", SERVED]
    arms = args.arms.split(",") if args.arms else (quick if args.quick else full)
    print(
        f"swarmdeck ui bench: {FLOODS} sessions x {RATE / 1e6:.0f} MB/s + `cat`, tmux {COLS}x"
        f"{ROWS}, {os.cpu_count()} CPUs, load average "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}, {time.ctime()}"
    )
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="swarmdeck-bench-ui-prof-") as prof:
        for n, arm in enumerate(arms):
            last = n == len(arms) - 1
            profile = Path(prof) / "app.prof" if args.profile and last else None
            results[arm] = run_arm(arm, args.quick, profile)
        report(results)
        if args.profile and (Path(prof) / "app.prof").exists():
            print("\n  app profile (whole run, own time):")
            stats = pstats.Stats(str(Path(prof) / "app.prof"))
            stats.sort_stats("tottime").print_stats(18)


if __name__ == "__main__":
    main()
