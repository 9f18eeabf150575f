"""What the screen handles in front of avt: the escapes it scans for and the answers it gives.

avt neither answers queries nor tracks titles or input modes, and a few of its behaviours
differ from a real terminal's in ways a scan can correct cheaply (DEL, DECALN). One
precompiled regex finds exactly those sequences; `Screen` acts on the matches.
"""

from __future__ import annotations

import re
from collections import deque
from importlib.metadata import PackageNotFoundError, version

# ESC is a literal prefix, so SGR-heavy floods stay cheap.
SCAN = re.compile(
    r"\x1b(?:\[\?(?P<dec>[\d;]*)(?P<set>[hl])"
    r"|\[(?P<dsr>[56])n"
    r"|\[(?P<da>>?)0?c"
    r"|\[>0?(?P<version>q)"
    r"|\[(?P<window>18|2[23](?:;\d*)?)t"
    r"|\][02];(?P<title>[^\x07\x1b]*)(?:\x07|\x1b\\)"
    r"|\](?P<notify>(?:9|777);[^\x07\x1b]*)(?:\x07|\x1b\\)"
    r"|#(?P<align>8)"
    r"|(?P<esc>[=>c]))"
)
# A cheaper first pass (~2.0 vs ~2.7 ms/MB here): most chunks of a flood hold none of those.
ANY = re.compile(r"\x1b(?:[\]=>c#]|\[(?:[?>c]|[56]n|0c|18t|2[23](?:;\d*)?t))")
# Complete OSC strings: a BEL ending one (titles, links, cwd reports do) rings nothing.
_OSC_STRING = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
# An escape that may still complete in the next chunk; kept for the scanner only.
_PARTIAL = re.compile(r"\x1b(?:\[[?>]?[\d;]*|#)?")
_OPEN_OSC = re.compile(r"\x1b\][^\x07\x1b]*\x1b?")
TAIL_LIMIT = 512
TITLE_LIMIT = 4096  # characters kept of a title; the rest of a longer one is dropped
NOTICE_LIMIT = 200  # characters kept of a desktop notification's text
TITLE_STACK = 10  # xterm's depth; pushing onto a full stack forgets the oldest entry
_DEL = re.compile(r"(\x1b[\]P][^\x07\x1b]*)|\x7f")

try:
    _VERSION = version("swarmdeck")
except PackageNotFoundError:  # run from a source tree that was never installed
    _VERSION = "0"

# tmux 3.3a's answers, byte for byte: a VT100 with advanced video (claiming no VT220
# feature avt lacks, and no sixel) and a DA2 identity programs know and treat as a modern
# multiplexer (vim then picks SGR mouse); XTVERSION is where swarmdeck names itself.
REPLIES = {
    "5": b"\x1b[0n",
    "": b"\x1b[?1;2c",
    ">": b"\x1b[>84;0;0c",
    "q": f"\x1bP>|swarmdeck {_VERSION}\x1b\\".encode(),
}
# DECALN leaves avt's cursor and margins in place; a real terminal resets the margins and
# homes the cursor (tmux and xterm do).
AFTER_ALIGN = "\x1b[r\x1b[H"


def unterminated(scan: str, end: int) -> str:
    """The escape still open at the end of `scan` (after `end`, the last match): an OSC
    string is kept up to TITLE_LIMIT however many feeds it spans, any other escape only
    when it started in the last TAIL_LIMIT characters. An open OSC holds no ESC but a
    final one, so it starts at the last ESC or the one before (one-character `rfind`
    is ~10x cheaper per chunk than looking for the two-character OSC introducer)."""
    last = scan.rfind("\x1b", end)
    if last < 0:
        return ""
    osc = scan.rfind("\x1b", end, last) if last == len(scan) - 1 else last
    if osc >= 0 and scan.startswith("\x1b]", osc) and _OPEN_OSC.fullmatch(scan, osc):
        kept = scan[osc : osc + TITLE_LIMIT + 4]
        cut = len(kept) < len(scan) - osc
        return kept + "\x1b" if cut and scan[-1] == "\x1b" else kept  # the ST may follow
    if last >= len(scan) - TAIL_LIMIT and _PARTIAL.fullmatch(scan, last):
        return scan[last:]
    return ""


def _keep_string(match: re.Match[str]) -> str:
    return match[1] or ""


def without_del(tail: str, text: str) -> str:
    """`text` without DEL outside OSC and DCS strings: a terminal ignores DEL there, avt
    stores it as a character. `tail` is the scanner's open escape, for a string that
    began in an earlier feed."""
    prefix = tail if tail.startswith("\x1b]") else ""
    return _DEL.sub(_keep_string, prefix + text)[len(prefix) :]


def size_report(cols: int, rows: int) -> bytes:
    """The answer to CSI 18 t, as xterm spells it (tmux 3.3a swaps the two numbers)."""
    return f"\x1b[8;{rows};{cols}t".encode()


class Titles:
    """The window title and xterm's title stack (CSI 22 t pushes, CSI 23 t pops)."""

    def __init__(self) -> None:
        self.current = ""
        self._stack: deque[str] = deque(maxlen=TITLE_STACK)

    def set(self, title: str) -> None:
        self.current = title[:TITLE_LIMIT]

    def window_op(self, params: str) -> None:
        """CSI 22/23 ; Ps t: Ps 0 or 2 (or none, as xterm defaults) means the window
        title, the one a pane shows; Ps 1 is the icon name alone, which it does not."""
        op, _, which = params.partition(";")
        if which not in ("", "0", "2"):
            return
        if op == "22":
            self._stack.append(self.current)
        elif self._stack:
            self.current = self._stack.pop()

    def forget_stack(self) -> None:
        self._stack.clear()


def rings(scan: str) -> bool:
    """Whether `scan` (the open escape kept from the last feed, then new text) holds a
    BEL outside any OSC string. Asked only of text with a BEL in it; the OSC strings are
    cut out at C speed (~3 ms/MB of OSC-8-linked output here, next to avt's ~60)."""
    return "\x07" in _OSC_STRING.sub("", scan)


def notice(body: str) -> str | None:
    """The text of a desktop notification, or None for an OSC 9 / 777 that is none:
    OSC 9 ; text (iTerm2, kitty, WezTerm) and OSC 777 ; notify ; title ; body (VTE,
    urxvt) notify; ConEmu's OSC 9 ; <n> ; ... (progress, cwd) and other 777 verbs do not."""
    number, _, rest = body.partition(";")
    if number == "9":
        head, sep, _ = rest.partition(";")
        return None if sep and head.isdigit() else rest[:NOTICE_LIMIT]
    verb, _, text = rest.partition(";")
    if verb != "notify":
        return None
    title, _, message = text.partition(";")
    return (f"{title}: {message}" if title and message else title or message)[:NOTICE_LIMIT]
