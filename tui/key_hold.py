"""Keys meant for a session must not run as room commands.

After Enter is refused (the session has ended) or a session ends under the operator's
fingers, the line they go on typing would otherwise sort the list (`s`), open Fork (`f`)
or terminate a session (`t`, `y`). The hold swallows typed keys until the operator pauses
for HOLD seconds (each swallowed key keeps it a moment longer, so a whole line is dropped)
or presses Esc.
"""

from __future__ import annotations

import time

HOLD = 1.5
TYPED = frozenset({"enter", "backspace", "tab", "space"})


class KeyHold:
    def __init__(self, seconds: float = HOLD) -> None:
        self.seconds = seconds
        self._until = 0.0

    def start(self) -> None:
        self._until = time.monotonic() + self.seconds

    def release(self) -> None:
        self._until = 0.0

    @property
    def active(self) -> bool:
        return time.monotonic() < self._until

    def swallows(self, key: str, printable: bool) -> bool:
        """Whether to drop this key: a typed one while the hold lasts (it then lasts a
        moment longer), or the Esc that ends it. Other keys (arrows, Ctrl-p) pass."""
        if not self.active:
            return False
        if key == "escape":
            self.release()
            return True
        if printable or key in TYPED:
            self.start()
            return True
        return False
