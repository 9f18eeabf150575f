"""A service's readiness probe for one attempt (the deck side is engine/deck/ready_spec.py).

`log`: the pattern is searched in the attempt's output as it is decoded (from its first
byte: the probe exists before the job starts), escape sequences left out, `^` and `$` at
line ends, over a bounded tail so a match split across reads is still found. `port`: a TCP
connection to localhost is tried every PORT_EVERY until one is accepted (and closed at
once). Both, when both are given; the session decides what a timeout means.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from engine.deck.ready_spec import ReadySpec

PORT_EVERY = 0.1
TAIL = 4096
"""Output kept unmatched between reads: a ready line longer than this may be missed."""
_CSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")


class ReadyProbe:
    def __init__(self, spec: ReadySpec) -> None:
        self.spec = spec
        self._pattern = re.compile(spec.log, re.MULTILINE) if spec.log is not None else None
        self._tail = ""
        self._logged = anyio.Event()
        self._port_open = spec.port is None
        if self._pattern is None:
            self._logged.set()

    def feed(self, text: str) -> None:
        """The attempt's output, as the screen gets it."""
        if self._pattern is None or self._logged.is_set():
            return
        if "\x1b" in text:  # most reads have none: no pass over them
            text = _CSI.sub("", text)  # colours: the common case, a cheaper pattern
            if "\x1b" in text:  # (a sequence split across two reads stays in: rare)
                text = _ESCAPES.sub("", text)
        window = self._tail + text
        if self._pattern.search(window):
            self._logged.set()
            self._tail = ""
        else:
            self._tail = window[-TAIL:]

    async def wait(self) -> None:
        """Until every probe the spec names has passed."""
        await self._logged.wait()
        port = self.spec.port
        while port is not None and not self._port_open:
            self._port_open = await _accepts(port)
            if not self._port_open:
                await anyio.sleep(PORT_EVERY)

    def missing(self) -> str:
        """What has not been seen yet: `log /Serving/ not seen, port 8000 not accepting`;
        "" once everything has."""
        found = []
        if self.spec.log is not None and not self._logged.is_set():
            found.append(f"log /{self.spec.log}/ not seen")
        if self.spec.port is not None and not self._port_open:
            found.append(f"port {self.spec.port} not accepting")
        return ", ".join(found)


async def _accepts(port: int) -> bool:
    try:
        with anyio.fail_after(1.0):
            stream = await anyio.connect_tcp("127.0.0.1", port)
    except (OSError, TimeoutError):
        return False
    await stream.aclose()
    return True
