"""The bus from a session on a host against a local one (docs/hosts.md, "The bus on a host").

Two things a session's program meets, each run by a real deck session through the engine
(the remote ones on a loopback sshd, over the forwarded socket; the local ones on the
engine's socket), one after the other so they do not compete:

- **round trip**: one connection, `hello`, then `--messages` publishes, each waiting for
  its reply (a stdlib socket client, what any language would do): msgs/s and
  the p50 / p99 of one call;
- **`swarmdeck bus publish`**: `--invocations` runs of the command, each a Python start, a
  connection and one publish (remotely the CLI files the engine wrote on the host; the
  same files are also run locally, to tell the forward's share from the CLI's): the mean
  per command.

Every message has a subscriber (the operator, drained as it goes), so each is routed. The figures
show the forward's cost (SSH channel set-up per connection, a hop through sshd and
asyncssh per message) without a network.

    python bench/hosts_bus.py [--messages N] [--invocations N]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from engine.deck.spec import parse_deck
from engine.engine import open_engine
from engine.terminals.hosts.bus_shim import cli_code, library

if TYPE_CHECKING:
    from engine.bus.consumers import LocalSubscription

ROOT = Path(__file__).resolve().parent.parent
ROUND_TRIP = """
import json, os, socket, sys, time
n = int(sys.argv[1])
s = socket.socket(socket.AF_UNIX)
t0 = time.perf_counter()
s.connect(os.environ['SWARMDECK_BUS'])
f = s.makefile('rb')
def call(req, **frame):
    s.sendall(json.dumps(dict(frame, req=req)).encode() + b'\\n')
    reply = json.loads(f.readline())
    assert reply.get('ok'), reply
call(0, op='hello', session=os.environ['SWARMDECK_SESSION'],
     token=os.environ['SWARMDECK_BUS_TOKEN'])
hello = time.perf_counter() - t0
took = []
start = time.perf_counter()
for i in range(1, n + 1):
    t = time.perf_counter()
    call(i, op='publish', topic='bench', payload=i)
    took.append(time.perf_counter() - t)
total = time.perf_counter() - start
took.sort()
print('RESULT', json.dumps({'rate': n / total, 'p50': took[n // 2], 'p99': took[n * 99 // 100],
                            'hello': hello}))
"""
CLI = (
    "t0=$(date +%s%N); i=0; while [ $i -lt {n} ]; do {cli} publish bench 1 >/dev/null || exit 1;"
    ' i=$((i+1)); done; t1=$(date +%s%N); echo "RESULT {{\\"cli\\": $(( (t1-t0)/{n}/1000 ))}}"'
)


def deck_text(sshd_table: str, messages: int, invocations: int, bundle: Path) -> str:
    local_cli = f"PYTHONPATH={ROOT} {sys.executable} -m tui.cli bus"
    local_bundle = f"{sys.executable} -I -S -c {shlex.quote(cli_code(str(bundle)))}"
    sessions = [
        ("local-rtt", None, f"python3 -c {shlex.quote(ROUND_TRIP)} {messages}"),
        ("remote-rtt", "box", f"python3 -c {shlex.quote(ROUND_TRIP)} {messages}"),
        ("local-cli", None, CLI.format(n=invocations, cli=local_cli)),
        ("bundle-cli", None, CLI.format(n=invocations, cli=local_bundle)),
        ("remote-cli", "box", CLI.format(n=invocations, cli="swarmdeck bus")),
    ]
    parts, before = [sshd_table, "[pool]\nsize = 2\nwarm = 1\n"], None
    for name, host, command in sessions:
        parts.append(
            f'[[session]]\nname = "{name}"\ncommand = {json.dumps(command)}\ncols = 250\n'
            + (f'host = "{host}"\n' if host else "")
            + (f'depends_on = ["{before}"]\n' if before else "")
        )
        before = name
    return "\n".join(parts)


Figures = dict[str, dict[str, float]]  # per session: what it printed after RESULT


async def measure(directory: Path, table: str, messages: int, invocations: int) -> Figures:
    bundle = directory / "lib"
    for name, content in library().items():
        (bundle / name).parent.mkdir(parents=True, exist_ok=True)
        (bundle / name).write_text(content)
    text = deck_text(table, messages, invocations, bundle)
    path = directory / "deck.toml"
    path.write_text(text)
    deck = parse_deck(text, path)
    found: Figures = {}
    async with open_engine(deck, directory / "run") as engine, anyio.create_task_group() as tg:
        subscription = engine.bus_subscribe("bench")  # every publish is routed somewhere
        tg.start_soon(drain, subscription)
        await engine.start_all()
        await engine.wait_finished()
        tg.cancel_scope.cancel()
        for name in engine.sessions:
            lines = [line.strip() for line in engine.sessions[name].screen.text()]
            result = [line for line in lines if line.startswith("RESULT ")]
            if not result:
                raise SystemExit(f"{name}: no result; its screen:\n" + "\n".join(lines))
            found[name] = json.loads(result[-1].removeprefix("RESULT "))
        subscription.close()
    return found


async def drain(subscription: LocalSubscription) -> None:
    while True:
        subscription.drain_nowait()
        await anyio.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--invocations", type=int, default=20)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.sshd_support import running_sshd  # a bench-only, test-only helper

    with tempfile.TemporaryDirectory() as tmp, running_sshd(Path(tmp) / "sshd") as sshd:
        table = (
            f'[[host]]\nname = "box"\nssh = "{sshd.address}"\nidentity = "{sshd.identity}"\n'
            f'known_hosts = "{sshd.known_hosts}"\npool = {{ size = 2, warm = 1 }}\n'
        )
        found = anyio.run(measure, Path(tmp), table, args.messages, args.invocations)
    load = os.getloadavg()[0]
    print(f"{args.messages} publishes per round-trip arm; 2 cores, load {load:.2f}")
    print(f"{'where':8} {'msgs/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'hello ms':>9} {'cli ms':>8}")
    for where in ("local", "remote"):
        rtt, cli = found[f"{where}-rtt"], found[f"{where}-cli"]
        print(
            f"{where:8} {rtt['rate']:9,.0f} {rtt['p50'] * 1e3:8.2f} {rtt['p99'] * 1e3:8.2f} "
            f"{rtt['hello'] * 1e3:9.2f} {cli['cli'] / 1e3:8.1f}"
        )
    bundled = found["bundle-cli"]["cli"] / 1e3
    print(f"the host's CLI files run locally (-I -S, no forward): {bundled:.1f} ms")


if __name__ == "__main__":
    main()
