"""Key-to-screen under UNPACED floods, measured on the terminal's visible screen.

bench/ui.py paces its floods to 1 MB/s and stamps a key when Textual has written the frame
holding its echo. A user meets unpaced floods (`yes`, `cat big.log`, a runaway agent) and
sees the terminal. So here the floods run as fast as the machine lets them, and a key
counts as on screen once the outer tmux pane that runs the room SHOWS it: a tmux
control-mode client polls `capture-pane -p` (no process per poll, ~2 ms apart) until the
typed text is there. The paint stamp (bench/ui.py's instrumented child, `E` lines) is kept
beside it, so the terminal's share of the delay is visible.

The room is bench/ui.py's (`Room`, `Service`, the instrumented child) in a 160x48 pane, for
the in-process room (arm `app`: the engine in the room's process) and the served room
(arm `served`: `swarmdeck serve` + the room attached over the control socket, which is
what `swarmdeck run` does). Two decks per arm: the issue's case (`echo` = `cat`, focused,
one flooding session, one idle `cat`) and eight flooding sessions. Each flooding session
runs `flood.sh`, which floods only while the bench says so (a gate file per phase):
`yes swarmdeck-flood-line` or `cat` of bench/ingest.py's corpus, in a loop, unpaced.

Figures per phase: key-to-screen p50/p95/max (and key-to-paint p50), bytes/s the engine
ingested (the PTY relay's `rchar` from /proc: every PTY byte passes through it, and its
pipe to the engine holds at most 256 KiB, so over seconds it is the engine's intake),
room CPU, served engine CPU, tmux server CPU. A detached tmux pane's `cat` of a corpus
(bench/ingest.py's `tmux_run`) gives the 1.5x reference in the same run.

    python -m bench.keys [--quick] [--arms app,served] [--history]

Arm `ssh` is the demo over SSH: `swarmdeck serve --ssh` (its own SSH server, a room per
connection, attached like `served`'s) and a real OpenSSH client (`ssh -tt`) in the pane; the
keys cross ssh, the server and the room's PTY. The room's process here is the server's
room child, and there is no paint stamp (the room is not bench/ui.py's child).

Arm `served-full` is `served` with the room prefetching the watched session's whole history
each time, as before protocol 7's `history_since` (SWARMDECK_HISTORY_PREFETCH=full): with
`--history --arms served-full,served`, before and after side by side in one run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.ingest import tmux_run, write_corpus
from bench.ui import ECHO, ROOT, SERVED, Log, Room, Service, _active, _cpu, focus_echo, pct

COLS, ROWS = 160, 48  # the terminal
FULL = f"{SERVED}-full"  # arm: the served room re-fetching whole histories (protocol 6)
SSH = "ssh"  # arm: the served engine's own SSH server, a real OpenSSH client in the pane
CORPUS = 4_000_000  # bytes; `cat` in a loop, so a phase's end waits at most one pass
TIMED = "0123456789acdeghilmouvwxy"  # no room bindings among them
PREFIX = "ghilmouvwxy"  # not hex digits: a line's prefix never shows in the corpus
LOST = 3.0  # s: a key not on screen by then counts as this late
POLL = 0.002  # s between two captures
FLOOD_SH = """\
n=$1 g=$2 corpus=$3
exec 9<>"$g/fifo-$n"   # a FIFO nobody writes: `read -t` sleeps without a process
while [ ! -e "$g/end" ]; do
  if [ -e "$g/yes-$n" ]; then timeout 0.5 yes swarmdeck-flood-line
  elif [ -e "$g/cat-$n" ]; then cat "$corpus"
  else read -t 0.2 -u 9; fi
done
"""


class Screen:
    """A tmux control-mode client that captures the room's pane on request."""

    def __init__(self, room: Room) -> None:
        self.process = subprocess.Popen(
            [*room.tmux, "-C", "attach-session", "-t", "main"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, errors="replace", bufsize=1,
        )  # fmt: skip
        self.replies: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._send("refresh-client -f no-output")
        self.replies.get(timeout=5)  # the attach's own reply
        self.replies.get(timeout=5)

    def _send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def _read(self) -> None:
        assert self.process.stdout is not None
        block: list[str] | None = None
        for line in self.process.stdout:
            if line.startswith("%begin"):
                block = []
            elif line.startswith(("%end", "%error")) and block is not None:
                self.replies.put("".join(block))
                block = None
            elif block is not None:
                block.append(line)

    def capture(self) -> str:
        self._send("capture-pane -p -t main")
        return self.replies.get(timeout=10)

    def wait(self, text: str, since: float, timeout: float = LOST, times: int = 1) -> float:
        """When a capture first showed `text` (`times` times: the reply's arrival, an upper
        bound)."""
        deadline = since + timeout
        while time.monotonic() < deadline:
            if self.capture().count(text) >= times:
                return time.monotonic()
            time.sleep(POLL)
        raise TimeoutError(f"{text!r} never on screen")

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class SshRoom(Room):
    """The room the served engine's SSH server runs for a real `ssh -tt` in the pane."""

    def __init__(self, tmp: Path, service: Service, size: tuple[int, int]) -> None:
        self.name = f"swarmdeck-bench-keys-ssh-{os.getpid()}"
        self.tmux = ["tmux", "-L", self.name, "-f", "/dev/null"]
        self.log = Log(tmp / "log")  # stays empty: no paint stamps
        self.log.ready = True
        self.typed = ""
        self.service = service
        options = ["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "BatchMode=yes",
                   "IdentitiesOnly=yes", "LogLevel=ERROR"]  # fmt: skip
        flags = " ".join(f"-o {option}" for option in options)
        command = (
            f"exec ssh -F /dev/null -tt {flags} -i {service.ssh_key} "
            f"-p {service.ssh_port} 127.0.0.1"
        )
        self.client = self._open_pane(command, size)
        self.pid = self._room_child(service.pid)

    @staticmethod
    def _room_child(service: int, timeout: float = 30) -> int:
        """The server's room process for this connection (`tui.cli attach`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (room := _child(service, "attach")) is not None:
                return room
            time.sleep(0.1)
        raise TimeoutError("the SSH server started no room")

    def close(self) -> None:
        """Leave ssh (its room detaches), then tmux."""
        self._end(self.client, signal.SIGTERM, 10)


def focus_on_screen(room: Room, screen: Screen) -> None:
    """focus_echo without paint stamps: Enter on the list's first row (`echo`) types into
    its pane; a typed row comes back twice (the terminal's echo, then cat's copy)."""
    for attempt in range(10):
        room.key("Enter")
        time.sleep(0.5)
        token = f"{attempt}0{attempt}0{attempt}"
        for char in token:
            room.key(char)
        room.key("Enter")
        with contextlib.suppress(TimeoutError):
            screen.wait(token, time.monotonic(), timeout=3, times=2)
            return
    raise TimeoutError("could not focus the echo pane over ssh")


class Typist:
    """Types into the focused `cat` pane: each row starts with an untimed prefix unique to
    the row (so its text cannot match an earlier row), then up to 20 timed keys."""

    def __init__(self, room: Room, screen: Screen) -> None:
        self.room, self.screen = room, screen
        self.rows = 0
        self.row = ""
        self.keys = 0

    def new_row(self) -> None:
        if self.row:
            self.room.key("Enter")
            # `cat` writes the row back once it reads it: wait for that (the row twice on
            # screen), or the next row's first keys may be echoed by the terminal before
            # cat's copy lands, which splits the next row across two lines (on a busy
            # machine cat is slow to run) and its keys would look lost.
            with contextlib.suppress(TimeoutError):
                self.screen.wait(self.row, time.monotonic(), timeout=2 * LOST, times=2)
        n, self.rows = self.rows, self.rows + 1
        prefix = "".join(PREFIX[(n // len(PREFIX) ** i) % len(PREFIX)] for i in range(3))
        self.row = ""
        for char in prefix:
            self.row += char
            self.room.key(char)
        with contextlib.suppress(TimeoutError):  # then its timed keys count as lost
            self.screen.wait(self.row, time.monotonic(), timeout=2 * LOST)

    def key(self) -> tuple[float, float]:
        """Type one key: (key-to-screen ms, key-to-paint ms)."""
        if len(self.row) >= 23:
            self.new_row()
        char = TIMED[self.keys % len(TIMED)]
        self.keys += 1
        self.row += char
        t0 = self.room.key(char)
        try:
            shown = (self.screen.wait(self.row, t0) - t0) * 1e3
        except TimeoutError:
            shown = LOST * 1e3
        painted = float("nan")
        self.room.log.pump()
        for t, text in reversed(self.room.log.echoes):
            if t < t0:
                break
            if text == self.row:
                painted = (t - t0) * 1e3
        return shown, painted


def _relay(engine: int) -> int | None:
    """The engine's PTY relay process (its child running relay_process.py)."""
    return _child(engine, "relay_process")


def _child(parent: int, word: str) -> int | None:
    """A child of `parent` whose command line holds `word`."""
    for task in Path(f"/proc/{parent}/task").iterdir():
        for child in (task / "children").read_text().split():
            with contextlib.suppress(OSError):
                if word in Path(f"/proc/{child}/cmdline").read_text(errors="replace"):
                    return int(child)
    return None


def _rchar(pid: int | None) -> int:
    if pid is None:
        return 0
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def _deck(tmp: Path, floods: int, history: bool = False) -> str:
    """`history`: the typed-into `cat` first prints a coloured corpus, so it has a full
    5,000-line history (an agent's long session), which an attached room keeps fetching."""
    (tmp / "flood.sh").write_text(FLOOD_SH)
    echo = f"cat {tmp}/corpus.txt | head -c 1500000; exec cat" if history else "exec cat"
    sessions = [f'[[session]]\nname = "{ECHO}"\ncommand = "{echo}"\n']
    for n in range(floods):
        os.mkfifo(tmp / f"fifo-{n}")
        argv = f"bash {tmp}/flood.sh {n} {tmp} {tmp}/corpus.txt"
        sessions.append(f'[[session]]\nname = "flood-{n}"\ncommand = "exec {argv}"\n')
    if floods == 1:  # the third session
        sessions.append('[[session]]\nname = "idle"\ncommand = "exec cat"\n')
    pool = f"[pool]\nsize = {len(sessions)}\nwarm = {len(sessions)}\ncols = 66\nrows = 16\n"
    return f'name = "keys-bench"\n{pool}\n' + "\n".join(sessions)


def phase(
    typist: Typist, tmp: Path, kind: str, floods: int, keys: int, engine: int, quick: bool
) -> dict[str, float]:
    """Start the floods (`kind`: yes, cat or idle), let them settle, type `keys` keys."""
    room = typist.room
    for n in range(floods if kind != "idle" else 0):
        (tmp / f"{kind}-{n}").touch()
    time.sleep(1.0 if quick else 2.0)
    relay = _relay(engine)
    watched = [room.pid, room.server] + ([engine] if engine != room.pid else [])
    cpu0, bytes0, t0 = [_cpu(p) for p in watched], _rchar(relay), time.monotonic()
    typist.new_row()
    deadline = t0 + (12 if quick else 20)  # a phase ends early if keys are very late
    figures = [typist.key()]
    while len(figures) < keys and time.monotonic() < deadline:
        figures.append(typist.key())
    shown, painted = zip(*figures, strict=True)
    wall = time.monotonic() - t0
    cpu = [(_cpu(p) - c) / wall * 100 for p, c in zip(watched, cpu0, strict=True)]
    ingested = (_rchar(relay) - bytes0) / wall / 1e6
    for n in range(floods if kind != "idle" else 0):
        (tmp / f"{kind}-{n}").unlink(missing_ok=True)
    time.sleep(0.5)  # a `cat` pass ends, `timeout` ends a `yes`
    return {
        "key50": pct(list(shown), 0.5), "key95": pct(list(shown), 0.95),
        "keymax": max(shown), "keys": len(shown),
        "paint50": pct([p for p in painted if p == p], 0.5),
        "mbs": ingested, "per": ingested / max(floods if kind != "idle" else 1, 1),
        "room": cpu[0], "tmux": cpu[1], "engine": cpu[2] if len(cpu) > 2 else float("nan"),
    }  # fmt: skip


def run_deck(
    arm: str, floods: int, kinds: list[str], keys: int, quick: bool, history: bool = False
) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="swarmdeck-bench-keys-") as name:
        tmp = Path(name)
        write_corpus(tmp / "corpus.txt", CORPUS)
        (tmp / "deck.toml").write_text(_deck(tmp, floods, history))
        served = arm.startswith(SERVED) or arm == SSH
        service = Service(tmp, ssh=arm == SSH) if served else None
        if service is not None and arm == FULL:  # the room fetches all of it, as in v6
            service.env_args.append("SWARMDECK_HISTORY_PREFETCH=full")
        room: Room | None = None
        screen = None
        try:
            if arm == SSH:
                assert service is not None
                room = SshRoom(tmp, service, (COLS, ROWS))
            else:
                room = Room(tmp, "app" if service is None else SERVED, None, service, (COLS, ROWS))
            deadline = time.monotonic() + 30
            while not room.log.ready and time.monotonic() < deadline:
                room.log.pump()
                time.sleep(0.05)
            if not room.log.ready:
                err = tmp / "child.err"
                raise RuntimeError(err.read_text() if err.exists() else "room never ready")
            total = floods + 1 + (floods == 1)
            room.wait_screen(lambda text: _active(text) == total)
            if arm == SSH:
                screen = Screen(room)
                focus_on_screen(room, screen)
            else:
                focus_echo(room)
                screen = Screen(room)
            typist = Typist(room, screen)
            engine = service.pid if service is not None else room.pid
            return {k: phase(typist, tmp, k, floods, keys, engine, quick) for k in kinds}
        finally:
            (tmp / "end").touch()
            if screen is not None:
                screen.close()
            try:
                if room is not None:
                    room.close()
            finally:
                if service is not None:
                    service.stop()


ROWS_OUT = (
    ("keys typed (timed)", "keys", "{:.0f}"),
    ("key-to-screen p50, ms", "key50", "{:.1f}"),
    ("key-to-screen p95, ms", "key95", "{:.1f}"),
    ("key-to-screen max, ms", "keymax", "{:.1f}"),
    ("key-to-paint p50 (Textual wrote it), ms", "paint50", "{:.1f}"),
    ("engine ingested, MB/s (all floods)", "mbs", "{:.1f}"),
    ("engine ingested, MB/s per flood", "per", "{:.1f}"),
    ("room CPU, % of a core", "room", "{:.0f}"),
    ("served engine CPU, %", "engine", "{:.0f}"),
    ("tmux server CPU, %", "tmux", "{:.0f}"),
)


def report(results: dict[str, dict[str, float]], tmux_mbs: float) -> None:
    width = max(16, *(len(c) + 2 for c in results))
    print(f"  {'':<40}" + "".join(f"{c:>{width}}" for c in results))
    for label, key, fmt in ROWS_OUT:
        cells = "".join(
            f"{'-' if v != v else fmt.format(v):>{width}}"
            for v in (r[key] for r in results.values())
        )  # NaN: -
        print(f"  {label:<40}{cells}")
    print(f"  tmux pane 200x50, `cat` of the corpus alone: {tmux_mbs:.1f} MB/s")
    for column, r in results.items():
        if column.endswith("idle"):
            continue
        met = r["key95"] <= 50 and r["key50"] <= 20
        ratio = r["per"] / tmux_mbs if column.split()[1] == "1" else float("nan")
        print(
            f"  {column}: key p50/p95 {r['key50']:.0f}/{r['key95']:.0f} ms (<= 20/50: "
            f"{'met' if met else 'MISSED'}); room CPU {r['room']:.0f} % "
            f"({'met' if r['room'] < 100 else 'MISSED'})"
            + (f"; flood / tmux pane {ratio:.2f}x" if ratio == ratio else "")
        )


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # a `timeout` or Ctrl-C still cleans up (tmux, service, sessions)


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupted)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="fewer keys and phases (<1 min)")
    parser.add_argument("--arms", default=f"app,{SERVED}")
    parser.add_argument(
        "--phases", help="only these, e.g. '1 idle,8 cat' (floods and kind; default: all)"
    )
    parser.add_argument(
        "--history", action="store_true", help="the typed-into session has a full history"
    )
    args = parser.parse_args()
    keys = 20 if args.quick else 30
    print(
        f"swarmdeck keys bench: unpaced floods, room in tmux {COLS}x{ROWS}, {keys} keys per "
        f"phase, {os.cpu_count()} CPUs, load average "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}, {time.ctime()}"
    )
    with tempfile.TemporaryDirectory(prefix="swarmdeck-bench-keys-tmux-") as name:
        corpus = Path(name) / "corpus.txt"
        write_corpus(corpus, 20_000_000)
        wall, _, _ = tmux_run(corpus)
        tmux_mbs = corpus.stat().st_size / wall / 1e6
    results: dict[str, dict[str, float]] = {}
    one = ["yes"] if args.quick else ["idle", "yes", "cat"]
    eight = ["cat"] if args.quick else ["yes", "cat"]
    if args.phases:
        chosen = [phase.split() for phase in args.phases.split(",")]
        one = [kind for floods, kind in chosen if floods == "1"]
        eight = [kind for floods, kind in chosen if floods == "8"]
    for arm in args.arms.split(","):
        for floods, kinds in ((1, one), (8, eight)):
            if not kinds:
                continue
            decked = run_deck(arm, floods, kinds, keys, args.quick, args.history)
            for kind, figures in decked.items():
                results[f"{arm} {floods} {kind}"] = figures
    report(results, tmux_mbs)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
