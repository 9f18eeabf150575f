"""The bus on NATS against the embedded bus: msgs/s and latency, same run, side by side.

    .venv/bin/python bench/bus_nats.py [--messages 20000] [--rate 500] [--queue-rate 100]

Starts `nats-server -js` on a free loopback port (a fresh store; Debian's nats-server), then
measures each arm on two setups, with the clients sessions use (engine.bus.bus_client, on
the engine's bus socket with a session's token):

embedded  one bus (`open_bus`: journal, socket, sweeper), publisher and subscriber on it;
nats      two buses linked to the server (`open_bus(nats=…)`, two run directories: two
          engines), the publisher on one and the subscriber on the other: what sessions on
          two hosts meet, through NATS on loopback.

Arms: a best-effort topic, a reliable topic (the subscriber acks in batches, one `ids`
frame per read), a reliable queue (4 pops waiting at once, each acked). Publishers keep
at most 256 publishes unanswered. msgs/s is messages received over the time from the
first publish to the last receipt. Latency runs pace `--rate` msgs/s (queues
`--queue-rate`: below what a `pop` loop takes, or the figure is the backlog's) for 2 s and
time every message from publish to receipt (one clock: everything runs in this process except
nats-server, so both setups share the process's CPU; nats-server runs beside it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.bus.bus_client import AsyncBusClient  # noqa: E402
from engine.bus.bus_errors import QueueFullError  # noqa: E402
from engine.bus.bus_server import open_bus  # noqa: E402
from engine.metrics import percentile  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from engine.bus.broker import MessageBus

WINDOW = 256
PAD = "x" * 64


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def nats_server(store: Path) -> AsyncIterator[str]:
    binary = shutil.which("nats-server")
    if binary is None:
        sys.exit("nats-server is not installed: apt-get install nats-server")
    port = free_port()
    args = [binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)]
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: ASYNC220
    try:
        for _ in range(400):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        yield f"nats://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


@asynccontextmanager
async def clients(setup: str, url: str, base: Path) -> AsyncIterator[tuple[Any, Any]]:
    """(publisher, subscriber) connected as sessions `pub` and `sub`."""
    run = base / uuid.uuid4().hex[:8]
    async with AsyncExitStack() as stack:
        if setup == "embedded":
            bus = await stack.enter_async_context(open_bus(run, ["pub", "sub"], _quiet))
            pub_bus = sub_bus = bus
        else:
            link = f"{url}/b{uuid.uuid4().hex[:8]}"
            pub_bus = await stack.enter_async_context(
                open_bus(run / "a", ["pub"], _quiet, nats=link)
            )
            sub_bus = await stack.enter_async_context(
                open_bus(run / "b", ["sub"], _quiet, nats=link)
            )
        pub = await _session(pub_bus, "pub")
        sub = await _session(sub_bus, "sub")
        try:
            yield pub, sub
        finally:
            await pub.aclose()
            await sub.aclose()


def _quiet(event: object) -> None:
    pass


async def _session(bus: MessageBus, name: str) -> Any:
    return await AsyncBusClient.connect(str(bus.socket_path), name, bus.token_for(name))


async def _publish_all(send: Any, n: int, pace: float = 0.0) -> None:
    """`send(seq)` n times, at most WINDOW unanswered; `pace`: seconds between sends."""
    window = asyncio.Semaphore(WINDOW)

    async def one(seq: int) -> None:
        try:
            await send(seq)
        finally:
            window.release()

    tasks = []
    start = time.perf_counter()
    for seq in range(n):
        await window.acquire()
        tasks.append(asyncio.create_task(one(seq)))
        if pace:
            await asyncio.sleep(max(0.0, start + (seq + 1) * pace - time.perf_counter()))
    await asyncio.gather(*tasks)


async def _receive_topic(sub: Any, n: int, reliable: bool, lat: list[float]) -> int:
    got = 0
    try:
        while got < n:
            batch = [await asyncio.wait_for(sub.messages.get(), 10)]
            while not sub.messages.empty():
                batch.append(sub.messages.get_nowait())
            now = time.perf_counter()
            lat.extend(now - m["payload"]["t"] for m in batch)
            got += len(batch)
            if reliable:
                await sub.call("ack", ids=[m["id"] for m in batch])
    except TimeoutError:
        pass  # best-effort: what was dropped never comes
    return got


async def topic_arm(pub: Any, sub: Any, n: int, reliable: bool, pace: float) -> tuple[int, float]:
    await sub.call("subscribe", pattern="bench.>", window=4096)
    await asyncio.sleep(0.5)  # the subscription reaches the other engine's link
    lat: list[float] = []

    async def send(seq: int) -> None:
        payload = {"seq": seq, "t": time.perf_counter(), "pad": PAD}
        await pub.publish("bench.topic", payload, reliable=reliable)

    start = time.perf_counter()
    receiving = asyncio.create_task(_receive_topic(sub, n, reliable, lat))
    await _publish_all(send, n, pace)
    got = await receiving
    return got, time.perf_counter() - start, lat  # type: ignore[return-value]


async def queue_arm(pub: Any, sub: Any, n: int, reliable: bool, pace: float) -> Any:
    lat: list[float] = []
    got = 0

    async def send(seq: int) -> None:
        payload = {"seq": seq, "t": time.perf_counter(), "pad": PAD}
        while True:
            try:
                await pub.push("bench", payload, reliable=True)
                return
            except QueueFullError:  # a producer waits for the consumers, as a real one must
                await asyncio.sleep(0.01)

    async def pop() -> None:
        nonlocal got
        while got < n:
            try:
                m = await sub.pop("bench", wait=10, ack=True)
            except Exception:  # the timeout: nothing more is coming
                return
            got += 1
            lat.append(time.perf_counter() - m["payload"]["t"])

    start = time.perf_counter()
    poppers = [asyncio.create_task(pop()) for _ in range(4)]
    await _publish_all(send, n, pace)
    await asyncio.gather(*poppers)
    return got, time.perf_counter() - start, lat


ARMS = {
    "topic best-effort": (topic_arm, False),
    "topic reliable": (topic_arm, True),
    "queue reliable": (queue_arm, True),
}
QUEUE_ARMS = {"queue reliable"}


async def measure(
    setup: str, url: str, base: Path, arm: str, n: int, rate: float
) -> dict[str, float]:
    run, reliable = ARMS[arm]
    async with clients(setup, url, base) as (pub, sub):
        got, took, _ = await run(pub, sub, n, reliable, 0.0)
    paced = int(rate * 2)
    async with clients(setup, url, base) as (pub, sub):
        _, _, lat = await run(pub, sub, paced, reliable, 1 / rate)
    return {
        "rate": got / took,
        "lost": n - got,
        "p50": percentile(lat, 0.5) * 1e3 if lat else float("nan"),
        "p99": percentile(lat, 0.99) * 1e3 if lat else float("nan"),
    }


async def main(n: int, rate: float, queue_rate: float, arms: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="bus-nats-") as tmp:
        base = Path(tmp)
        async with nats_server(base / "nats") as url:
            print(f"{n} messages per arm; latency paced for 2 s; {os.cpu_count()} cores, "
                  f"load {os.getloadavg()[0]:.2f}")  # fmt: skip
            head = (f"{'arm':<18} {'setup':<9} {'msgs/s':>9} {'lost':>6} {'paced':>6} "
                    f"{'p50 ms':>8} {'p99 ms':>8}")  # fmt: skip
            print(head)
            for arm in arms or ARMS:
                pace = queue_rate if arm in QUEUE_ARMS else rate
                for setup in ("embedded", "nats"):
                    r = await measure(setup, url, base, arm, n, pace)
                    line = f"{arm:<18} {setup:<9} {r['rate']:>9,.0f} {r['lost']:>6.0f} {pace:>6.0f}"
                    print(f"{line} {r['p50']:>8.2f} {r['p99']:>8.2f}", flush=True)


def _args(argv: Iterator[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=500.0, help="topics' latency pace")
    parser.add_argument("--queue-rate", type=float, default=100.0, help="queues' latency pace")
    parser.add_argument("--arm", action="append", choices=list(ARMS), help="only these arms")
    return parser.parse_args(argv)


if __name__ == "__main__":
    options = _args()
    asyncio.run(main(options.messages, options.rate, options.queue_rate, options.arm or []))
