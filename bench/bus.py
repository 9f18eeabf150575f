"""Bus throughput and latency, side by side with Redis pub/sub on the same machine.

    .venv/bin/python bench/bus.py [--messages 100000] [--publishers 1] [--runs 1]

In-process: one publisher, 1/4/16 subscribers, with the engine's setting around it: an
`EventHub` subscriber (the UI) receiving the bus's events and the sweeper's tick every 50 ms;
subscribers drain what they were handed every 100 messages. msgs/s is by the wall clock; the
CPU-time figure beside it is steadier on a shared machine.

Socket: a bus server process, `--publishers` publisher processes and one subscriber process.
Best-effort publishes are `quiet` frames written 100 per `sendall`; reliable ones wait for
their replies with at most 256 outstanding (each is journalled and committed before its
reply) and the subscriber acks what each read brought in one `ids` frame. The subscriber
asks for a window of 32,768 messages (~10 MB; Redis buffers up to 32 MB per pubsub client),
so a subscriber descheduled for a moment is not counted as a drop. Redis: redis-server on
a random loopback port (installed from Debian if missing), driven through redis-py (with
hiredis when installed) the same way: the same payloads encoded by the same JSON library,
publishes pipelined 100 per round trip, one pubsub subscriber. Both subscribers decode every
payload. msgs/s is messages received over the time from the first to the last. Latency
runs pace 2,000 msgs/s and time each 97th message from the publisher's clock to the
subscriber's (same host).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PAYLOAD = {"task": "compile", "target": "linux-x86_64", "seq": 0, "t": 0.0, "pad": "x" * 64}
BATCH = 100  # frames per write, commands per Redis pipeline
encode, decode = msgspec.json.encode, msgspec.json.decode


def pct(samples: list[float], q: float) -> float:
    """The q-quantile of latencies in seconds, in microseconds."""
    from engine.metrics import percentile

    return percentile(samples, q) * 1e6


def in_process(subscribers: int, n: int) -> dict[str, float]:
    from engine.bus.broker import MessageBus
    from engine.hub import EventHub

    hub = EventHub()
    ui = hub.subscribe()  # the operator's UI: every event the bus emits is delivered to it
    bus = MessageBus(["pub"], hub.emit)
    subs = [bus.subscribe(f"s{i}", "bench.>", window=1024) for i in range(subscribers)]
    lat: list[float] = []
    start, cpu = time.perf_counter(), time.process_time()
    tick = start + 0.05
    for i in range(n):
        bus.send("topic", "bench.tick", "pub", {"seq": i, "t": time.perf_counter()}, sized=True)
        if i % 100 == 99:
            now = time.perf_counter()
            for sub in subs:
                got = sub.drain_nowait()
                lat += [now - m.payload["t"] for m in got[::97]]
            if now >= tick:
                bus.sweep(ttl=False)
                while ui.statistics().current_buffer_used:
                    ui.receive_nowait()
                tick = now + 0.05
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    ui.close()
    return {"msgs": n / elapsed, "cpu": n / cpu, "deliveries": n * subscribers / elapsed,
            "p50": pct(lat, 0.5), "p99": pct(lat, 0.99)}  # fmt: skip


# -- socket roles (run as subprocesses) -------------------------------------------------------
def serve_bus(directory: str) -> None:
    import anyio

    from engine.bus.bus_server import open_bus
    from engine.hub import EventHub

    sessions = ["sub", *(f"pub{i}" for i in range(16))]

    async def main() -> None:
        hub = EventHub()
        async with open_bus(Path(directory), sessions, hub.emit) as bus:
            creds = {s: bus.token_for(s) for s in sessions}
            print(encode({"path": str(bus.socket_path), "tokens": creds}).decode(), flush=True)
            async with anyio.create_task_group() as tg:
                tg.start_soon(_ui, hub)
                await anyio.sleep_forever()

    anyio.run(main)


async def _ui(hub: Any) -> None:
    """The operator's UI, attached as in a real engine: it receives every bus event."""
    async for _ in hub.subscribe():
        pass


def connect(info: dict[str, Any], session: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(info["path"])
    hello = {"op": "hello", "session": session, "token": info["tokens"][session], "req": 0}
    sock.sendall(encode(hello) + b"\n")
    sock.recv(4096)
    return sock


class _Msg(msgspec.Struct):
    id: str
    payload: dict[str, Any]


class _Push(msgspec.Struct):
    msg: _Msg


def bus_subscriber(info: dict[str, Any], n: int, reliable: bool) -> None:
    sock = connect(info, "sub")
    sock.sendall(b'{"op":"subscribe","pattern":"bench.>","window":32768,"req":1}\n')
    sock.recv(4096)  # the subscribe reply
    print("ready", flush=True)
    push = msgspec.json.Decoder(_Push)
    got, lat, buf, start, last = 0, [], b"", 0.0, 0.0
    sock.settimeout(3)
    while got < n:
        try:
            buf += sock.recv(1 << 20)
        except TimeoutError:
            break  # best-effort messages were dropped (counted by the bus): report what came
        last = time.time()
        start = start or last
        *lines, buf = buf.split(b"\n")
        acks = []
        for line in lines:
            msg = push.decode(line).msg
            got += 1
            if msg.payload["seq"] % 97 == 0:
                lat.append(time.time() - msg.payload["t"])
            if reliable:
                acks.append(msg.id)
        if acks:  # one frame acks every message this read brought
            sock.sendall(b'{"op":"ack","quiet":true,"ids":%s}\n' % encode(acks))
    print(encode({"elapsed": last - start, "lat": lat, "got": got}).decode(), flush=True)


def bus_publisher(info: dict[str, Any], name: str, n: int, reliable: bool, rate: float) -> None:
    sock = connect(info, name)
    window, sent, acked, buf = 256, 0, 0, b""
    while sent < n:
        batch = []
        limit = min(n, sent + BATCH, acked + window) if reliable else min(n, sent + BATCH)
        for i in range(sent, limit):
            if rate:
                time.sleep(1 / rate)
            payload = {**PAYLOAD, "seq": i, "t": time.time()}
            frame: dict[str, Any] = {"op": "publish", "topic": "bench.tick", "payload": payload}
            frame.update({"reliable": True, "req": i} if reliable else {"quiet": True})
            batch.append(encode(frame) + b"\n")
            if rate:
                sock.sendall(batch.pop())
        sock.sendall(b"".join(batch))
        sent = limit
        while reliable and (sent - acked >= window or (sent == n and acked < n)):
            buf += sock.recv(1 << 20)
            acked += buf.count(b"\n")
            buf = buf[buf.rfind(b"\n") + 1 :]


def redis_subscriber(port: int, n: int) -> None:
    import redis

    pubsub = redis.Redis(port=port).pubsub()  # type: ignore[no-untyped-call]
    pubsub.subscribe("bench.tick")
    pubsub.get_message(timeout=5)
    print("ready", flush=True)
    got, lat, start, last = 0, [], 0.0, 0.0
    while got < n:
        m = pubsub.get_message(timeout=3)
        if m is None:
            break
        if m["type"] == "message":
            got += 1
            last = time.time()
            start = start or last
            payload = decode(m["data"])
            if payload["seq"] % 97 == 0:
                lat.append(time.time() - payload["t"])
    print(encode({"elapsed": last - start, "lat": lat, "got": got}).decode(), flush=True)


def redis_publisher(port: int, n: int, rate: float) -> None:
    import redis

    r = redis.Redis(port=port)
    for start in range(0, n, BATCH):
        pipe = r.pipeline(transaction=False)
        for i in range(start, min(n, start + BATCH)):
            if rate:
                time.sleep(1 / rate)
            pipe.publish("bench.tick", encode({**PAYLOAD, "seq": i, "t": time.time()}))
            if rate:
                pipe.execute()
        pipe.execute()


# -- orchestration ------------------------------------------------------------------------------
def role(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)


def pair(sub_args: list[str], pubs: list[list[str]], n: int) -> dict[str, float]:
    sub = role(*sub_args)
    assert sub.stdout is not None
    assert sub.stdout.readline().strip() == "ready"
    for p in [role(*args) for args in pubs]:
        p.wait()
    result = decode(sub.stdout.readline())
    sub.wait()
    elapsed = max(result["elapsed"], 1e-9)
    got = result["got"]
    return {"msgs": got / elapsed, "p50": pct(result["lat"], 0.5),
            "p99": pct(result["lat"], 0.99), "lost": n - got}  # fmt: skip


def start_redis() -> tuple[subprocess.Popen[bytes], int]:
    if shutil.which("redis-server") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "redis-server"], check=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no"]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    import redis

    for _ in range(100):
        try:
            redis.Redis(port=port).ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return proc, port


def socket_rows(n: int, publishers: int) -> list[tuple[str, dict[str, float]]]:
    rows = []
    share = n // publishers
    with tempfile.TemporaryDirectory() as tmp:
        server = role("_serve", tmp)
        assert server.stdout is not None
        info = server.stdout.readline().strip()
        try:
            for label, rel, count, rate in (
                (f"socket best-effort, pipelined ×{publishers}", "0", share, "0"),
                (f"socket reliable (journalled, acked) ×{publishers}", "1", share // 2, "0"),
                ("socket best-effort, paced 2k msgs/s", "0", 2000, "2000"),
            ):
                np = 1 if rate != "0" else publishers
                pubs = [["_pub", info, f"pub{i}", str(count), rel, rate] for i in range(np)]
                rows.append((label, pair(["_sub", info, str(count * np), rel], pubs, count * np)))
        finally:
            server.terminate()
            server.wait()
    redis_proc, port = start_redis()
    try:
        for label, count, rate in ((f"Redis pub/sub, pipelined ×{publishers}", share, "0"),
                                   ("Redis pub/sub, paced 2k msgs/s", 2000, "2000")):  # fmt: skip
            np = 1 if rate != "0" else publishers
            pubs = [["_rpub", str(port), str(count), rate] for _ in range(np)]
            rows.append((label, pair(["_rsub", str(port), str(count * np)], pubs, count * np)))
    finally:
        redis_proc.terminate()
        redis_proc.wait()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--publishers", type=int, default=1, help="socket publisher processes")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    n = args.messages
    for run in range(args.runs):
        rows = [
            (f"in-process, 1 publisher → {k} subscribers", in_process(k, n)) for k in (1, 4, 16)
        ]
        rows += socket_rows(n, args.publishers)
        load = os.getloadavg()[0]
        print(f"\n| run {run + 1} ({n} messages, {os.cpu_count()} cores, load {load:.1f}) "
              "| msgs/s | p50 µs | p99 µs |\n|---|---:|---:|---:|")  # fmt: skip
        for label, r in rows:
            extra = f" ({r['deliveries']:,.0f} deliveries/s)" if "deliveries" in r else ""
            extra += f" (cpu {r['cpu']:,.0f})" if "cpu" in r else ""
            extra += f" ({r['lost']:,.0f} dropped)" if r.get("lost") else ""
            print(f"| {label} | {r['msgs']:,.0f}{extra} | {r['p50']:,.0f} | {r['p99']:,.0f} |")
        by = dict(rows)
        redis = by[f"Redis pub/sub, pipelined ×{args.publishers}"]["msgs"]
        best = by[f"socket best-effort, pipelined ×{args.publishers}"]["msgs"]
        print(f"\nsocket best-effort / Redis pub/sub: {best / redis:.2f}×")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        name, argv = sys.argv[1], sys.argv[2:]
        if name == "_serve":
            serve_bus(argv[0])
        elif name == "_sub":
            bus_subscriber(decode(argv[0]), int(argv[1]), argv[2] == "1")
        elif name == "_pub":
            bus_publisher(decode(argv[0]), argv[1], int(argv[2]), argv[3] == "1", float(argv[4]))
        elif name == "_rsub":
            redis_subscriber(int(argv[0]), int(argv[1]))
        elif name == "_rpub":
            redis_publisher(int(argv[0]), int(argv[1]), float(argv[2]))
    else:
        main()
