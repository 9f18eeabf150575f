"""`swarmdeck bus …`: the bus for shell scripts inside sessions.

Reached from `tui.cli` before anything heavy is imported; this module and the client use
only the standard library (no pydantic, no anyio, no asyncio), so publishing one message
costs an interpreter start and a few milliseconds. Messages are printed one JSON object per
line (`--payload`: only the payload). Exit codes are in EXIT and docs/protocol.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from engine.bus.bus_client import BusClient, NoBusError, _options
from engine.bus.bus_errors import BusError
from engine.deck.priorities import PRIORITY_NAMES

EXIT = {
    "ok": 0,
    "bus-error": 1,
    "usage": 2,
    "no-bus": 3,
    "bad-token": 4,
    "not-authenticated": 4,
    "access-denied": 4,
    "queue-full": 5,
    "timeout": 6,
    "no-responders": 7,
    "unknown-target": 8,
    "limit-exceeded": 9,
    "journal-failed": 10,
}


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not JSON: {text!r} (quote strings: '\"hi\"')") from None


def _message_options(c: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """--reliable, --priority and --ttl: the options of every command that sends."""
    c.add_argument("--reliable", action="store_true", help="at least once, journalled")
    c.add_argument("--priority", default="normal", choices=PRIORITY_NAMES)
    c.add_argument("--ttl", type=float, help="seconds before it expires")
    return c


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="swarmdeck bus", description="Talk on the swarmdeck bus.")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def cmd(name: str, help: str, *, options: bool = False) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help)
        return _message_options(c) if options else c

    def printing(c: argparse.ArgumentParser) -> argparse.ArgumentParser:
        c.add_argument("-p", "--payload", action="store_true", help="print only the payload")
        return c

    c = cmd("publish", "publish JSON on a topic", options=True)
    c.add_argument("topic")
    c.add_argument("json", type=_json)
    c = printing(cmd("subscribe", "print messages on topics matching PATTERN"))
    c.add_argument("pattern")
    c.add_argument("--count", type=int, help="exit after N messages")
    c = cmd("send", "send JSON to a session's inbox", options=True)
    c.add_argument("session")
    c.add_argument("json", type=_json)
    c = printing(cmd("recv", "print messages from this session's inbox"))
    c.add_argument("--count", type=int, default=1)
    c.add_argument("--wait", type=float, help="give up after S seconds (exit 6)")
    c.add_argument("--no-ack", action="store_true")
    c = cmd("broadcast", "send JSON to every other session", options=True)
    c.add_argument("json", type=_json)
    c = printing(cmd("request", "publish a request and print the first reply", options=True))
    c.add_argument("topic")
    c.add_argument("json", type=_json)
    c.add_argument("--timeout", type=float, default=10.0)
    c = cmd("reply", "answer request MSG_ID")
    c.add_argument("msg_id")
    c.add_argument("json", type=_json)
    c = cmd("ack", "acknowledge a reliable message")
    c.add_argument("msg_id")
    c = cmd("group", "join, leave or send to a group")
    c.add_argument("action", choices=["join", "leave", "send"])
    c.add_argument("group")
    c.add_argument("json", type=_json, nargs="?")
    c.add_argument("--reliable", action="store_true")
    queue = cmd("queue", "work queues").add_subparsers(dest="qcmd", required=True)
    c = _message_options(queue.add_parser("push", help="push JSON onto a queue"))
    c.add_argument("queue")
    c.add_argument("json", type=_json)
    c.add_argument("--delay", type=float, default=0.0, help="not before S seconds (delay queues)")
    c = printing(queue.add_parser("pop", help="take one message; acks it unless --no-ack"))
    c.add_argument("queue")
    c.add_argument("--wait", type=float, help="give up after S seconds (exit 6)")
    c.add_argument("--no-ack", action="store_true")
    c = queue.add_parser("declare", help="order, limits and access of a queue")
    c.add_argument("queue")
    c.add_argument("--order", choices=["fifo", "lifo", "priority", "delay"])
    c.add_argument("--capacity", type=int)
    c.add_argument("--ack-timeout", type=float)
    c.add_argument("--max-attempts", type=int)
    c.add_argument("--publishers", nargs="+", metavar="PATTERN")
    c.add_argument("--consumers", nargs="+", metavar="PATTERN")
    dlq = cmd("dlq", "dead letters").add_subparsers(dest="dcmd", required=True)
    dlq.add_parser("list", help="print every dead letter")
    c = dlq.add_parser("replay", help="put dead letters back (all, or the given ids)")
    c.add_argument("ids", nargs="*")
    cmd("stats", "print the bus statistics as JSON")
    return p


def _print(args: argparse.Namespace, message: dict[str, Any]) -> None:
    out = message.get("payload") if getattr(args, "payload", False) else message
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


def _run(bus: BusClient, a: argparse.Namespace) -> None:
    if a.cmd == "publish":
        reply = bus.call("publish", topic=a.topic, payload=a.json, **_opts(a))
        if reply["delivered"] == 0:
            print(f"swarmdeck bus: nobody is subscribed to {a.topic!r}", file=sys.stderr)
        print(reply["id"])
    elif a.cmd == "subscribe":
        for message in bus.subscribe(a.pattern, count=a.count):
            _print(a, message)
    elif a.cmd == "send":
        print(bus.call("send", to=a.session, payload=a.json, **_opts(a))["id"])
    elif a.cmd == "recv":
        for _ in range(a.count):
            _take(bus, a, bus.call("recv", wait=a.wait)["message"])
    elif a.cmd == "broadcast":
        print(bus.call("broadcast", payload=a.json, **_opts(a))["id"])
    elif a.cmd == "request":
        _print(a, bus.call("request", topic=a.topic, payload=a.json, timeout=a.timeout,
                           **_opts(a))["message"])  # fmt: skip
    elif a.cmd == "reply":
        print(bus.reply(a.msg_id, a.json))
    elif a.cmd == "ack":
        bus.ack(a.msg_id)
    elif a.cmd == "group":
        if a.action == "send":
            print(bus.call("group.send", group=a.group, payload=a.json, reliable=a.reliable)["id"])
        else:
            bus.call(f"group.{a.action}", group=a.group)
    elif a.cmd == "queue":
        _queue(bus, a)
    elif a.cmd == "dlq":
        if a.dcmd == "list":
            for letter in bus.call("dlq.list")["letters"]:
                print(json.dumps(letter))
        else:
            print(bus.call("dlq.replay", ids=a.ids or None)["replayed"])
    elif a.cmd == "stats":
        print(json.dumps(bus.call("stats")["stats"], indent=2))


def _opts(a: argparse.Namespace) -> dict[str, Any]:
    return _options(a.reliable, a.priority, a.ttl)


def _queue(bus: BusClient, a: argparse.Namespace) -> None:
    if a.qcmd == "push":
        print(bus.call("queue.push", queue=a.queue, payload=a.json, delay=a.delay,
                       **_opts(a))["id"])  # fmt: skip
    elif a.qcmd == "pop":
        _take(bus, a, bus.call("queue.pop", queue=a.queue, wait=a.wait)["message"])
    else:
        keys = ("order", "capacity", "ack_timeout", "max_attempts", "publishers", "consumers")
        fields = {k: getattr(a, k) for k in keys}
        bus.call("queue.declare", queue=a.queue, **fields)


def _take(bus: BusClient, a: argparse.Namespace, message: dict[str, Any]) -> None:
    """Print, then ack: a consumer killed while printing gets the message again."""
    _print(a, message)
    if message.get("reliability") == "reliable" and not a.no_ack:
        bus.ack(message["id"])


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        with BusClient() as bus:
            _run(bus, args)
    except NoBusError as exc:
        print(f"swarmdeck bus: {exc}", file=sys.stderr)
        return EXIT["no-bus"]
    except BusError as exc:
        print(f"swarmdeck bus: {exc.code}: {exc}", file=sys.stderr)
        return EXIT.get(exc.code, 1)
    except (BrokenPipeError, KeyboardInterrupt):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
