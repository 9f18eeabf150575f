"""Bus throughput and latency, side by side with Redis pub/sub on the same machine.

    .venv/bin/python bench/bus.py [--messages 100000]

In-process: one publisher, 1/4/16 subscribers. Socket: a bus server, one publisher process
and one subscriber process (best-effort pipelined with `quiet` frames; reliable with
journalled publishes and acked deliveries). Redis: redis-server on a random loopback port
(installed from Debian if missing), redis-py publisher pipelining in batches of 100 and a
pubsub subscriber, the same payloads. Latency runs pace 2,000 msgs/s and time each message
from the publisher's clock to the subscriber's (same host). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PAYLOAD = {"task": "compile", "target": "linux-x86_64", "seq": 0, "t": 0.0, "pad": "x" * 64}


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e6 if ordered else 0.0


def in_process(subscribers: int, n: int) -> dict[str, float]:
    from engine.bus.broker import MessageBus
    from engine.hub import EventHub

    bus = MessageBus(["pub"], EventHub().emit)
    subs = [bus.subscribe(f"s{i}", "bench.>", window=1024) for i in range(subscribers)]
    lat: list[float] = []
    start = time.perf_counter()
    for i in range(n):
        bus.send("topic", "bench.tick", "pub", {"seq": i, "t": time.perf_counter()}, sized=True)
        if i % 100 == 99:
            for sub in subs:
                while (m := sub.get_nowait()) is not None:
                    if m.payload["seq"] % 97 == 0:
                        lat.append(time.perf_counter() - m.payload["t"])
    elapsed = time.perf_counter() - start
    return {"msgs": n / elapsed, "deliveries": n * subscribers / elapsed,
            "p50": pct(lat, 0.5), "p99": pct(lat, 0.99)}  # fmt: skip


# -- socket roles (run as subprocesses) -------------------------------------------------------
def serve_bus(directory: str) -> None:
    import anyio

    from engine.bus.server import open_bus
    from engine.hub import EventHub

    async def main() -> None:
        async with open_bus(Path(directory), ["pub", "sub"], EventHub().emit) as bus:
            creds = {s: bus.token_for(s) for s in ("pub", "sub")}
            print(json.dumps({"path": str(bus.socket_path), "tokens": creds}), flush=True)
            await anyio.sleep_forever()

    anyio.run(main)


def connect(info: dict[str, Any], session: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(info["path"])
    hello = {"op": "hello", "session": session, "token": info["tokens"][session], "req": 0}
    sock.sendall(json.dumps(hello).encode() + b"\n")
    sock.recv(4096)
    return sock


def bus_subscriber(info: dict[str, Any], n: int, reliable: bool) -> None:
    sock = connect(info, "sub")
    sock.sendall(b'{"op":"subscribe","pattern":"bench.>","window":1024,"req":1}\n')
    print("ready", flush=True)
    got, lat, buf, start, last = 0, [], b"", 0.0, 0.0
    sock.settimeout(3)
    while got < n:
        try:
            buf += sock.recv(1 << 20)
        except TimeoutError:
            break  # best-effort messages were dropped (counted by the bus): report what came
        last = time.time()
        *lines, buf = buf.split(b"\n")
        acks = []
        for line in lines:
            frame = json.loads(line)
            if "msg" not in frame:
                continue
            got += 1
            start = start or time.time()
            msg = frame["msg"]
            if msg["payload"]["seq"] % 97 == 0:
                lat.append(time.time() - msg["payload"]["t"])
            if reliable:
                acks.append(b'{"op":"ack","quiet":true,"id":"%s"}\n' % msg["id"].encode())
        if acks:
            sock.sendall(b"".join(acks))
    print(json.dumps({"elapsed": last - start, "lat": lat, "got": got}), flush=True)


def bus_publisher(info: dict[str, Any], n: int, reliable: bool, rate: float) -> None:
    sock = connect(info, "pub")
    window, sent, acked, buf = 256, 0, 0, b""
    while sent < n:
        batch = []
        limit = min(n, sent + 100, acked + window) if reliable else min(n, sent + 100)
        for i in range(sent, limit):
            payload = {**PAYLOAD, "seq": i, "t": time.time()}
            frame: dict[str, Any] = {"op": "publish", "topic": "bench.tick", "payload": payload}
            frame.update({"reliable": True, "req": i} if reliable else {"quiet": True})
            batch.append(json.dumps(frame).encode() + b"\n")
            if rate:
                time.sleep(1 / rate)
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
    got, lat, start = 0, [], 0.0
    while got < n:
        m = pubsub.get_message(timeout=5)
        if m and m["type"] == "message":
            got += 1
            start = start or time.time()
            payload = json.loads(m["data"])
            if payload["seq"] % 97 == 0:
                lat.append(time.time() - payload["t"])
    print(json.dumps({"elapsed": time.time() - start, "lat": lat}), flush=True)


def redis_publisher(port: int, n: int, rate: float) -> None:
    import redis

    r = redis.Redis(port=port)
    for start in range(0, n, 100):
        pipe = r.pipeline(transaction=False)
        for i in range(start, min(n, start + 100)):
            pipe.publish("bench.tick", json.dumps({**PAYLOAD, "seq": i, "t": time.time()}))
            if rate:
                time.sleep(1 / rate)
                pipe.execute()
        pipe.execute()


# -- orchestration ------------------------------------------------------------------------------
def role(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)


def pair(sub_args: list[str], pub_args: list[str], n: int) -> dict[str, float]:
    sub = role(*sub_args)
    assert sub.stdout is not None
    assert sub.stdout.readline().strip() == "ready"
    start = time.time()
    role(*pub_args).wait()
    result = json.loads(sub.stdout.readline())
    sub.wait()
    elapsed = max(result["elapsed"], 1e-9) if n > 1 else time.time() - start
    got = result.get("got", n)
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    n = parser.parse_args().messages
    rows = [(f"in-process, 1 publisher → {k} subscribers", in_process(k, n)) for k in (1, 4, 16)]
    with tempfile.TemporaryDirectory() as tmp:
        server = role("_serve", tmp)
        assert server.stdout is not None
        info = server.stdout.readline().strip()
        try:
            for label, rel, count, rate in (
                ("socket best-effort, pipelined", "0", n, "0"),
                ("socket reliable (journalled, acked)", "1", n // 2, "0"),
                ("socket best-effort, paced 2k msgs/s", "0", 2000, "2000"),
            ):
                sub_args = ["_sub", info, str(count), rel]
                rows.append((label, pair(sub_args, ["_pub", info, str(count), rel, rate], count)))
        finally:
            server.terminate()
            server.wait()
    redis_proc, port = start_redis()
    try:
        for label, count, rate in (("Redis pub/sub, pipelined", n, "0"),
                                   ("Redis pub/sub, paced 2k msgs/s", 2000, "2000")):  # fmt: skip
            rows.append((label, pair(["_rsub", str(port), str(count)],
                                     ["_rpub", str(port), str(count), rate], count)))  # fmt: skip
    finally:
        redis_proc.terminate()
        redis_proc.wait()
    print(f"| run ({n} messages, {os.cpu_count()} cores) | msgs/s | p50 µs | p99 µs |")
    print("|---|---:|---:|---:|")
    for label, r in rows:
        extra = f" ({r['deliveries']:,.0f} deliveries/s)" if "deliveries" in r else ""
        extra += f" ({r['lost']:,.0f} dropped)" if r.get("lost") else ""
        print(f"| {label} | {r['msgs']:,.0f}{extra} | {r['p50']:,.0f} | {r['p99']:,.0f} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        name, args = sys.argv[1], sys.argv[2:]
        if name == "_serve":
            serve_bus(args[0])
        elif name == "_sub":
            bus_subscriber(json.loads(args[0]), int(args[1]), args[2] == "1")
        elif name == "_pub":
            bus_publisher(json.loads(args[0]), int(args[1]), args[2] == "1", float(args[3]))
        elif name == "_rsub":
            redis_subscriber(int(args[0]), int(args[1]))
        elif name == "_rpub":
            redis_publisher(int(args[0]), int(args[1]), float(args[2]))
    else:
        main()
