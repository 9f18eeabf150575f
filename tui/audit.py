"""The audit log of a remote front end (SSH, web): who came in as what, what was refused.

JSON lines appended to `RUN_DIR/<name>` (`ssh-audit.jsonl`, `web-audit.jsonl`; 0600: it
names who came from where), one object per fact, flushed at once so a crash loses
nothing already decided. Failing to write it is logged, never fatal: the swarm keeps
running.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger(__name__)
SSH_AUDIT = "ssh-audit.jsonl"
WEB_AUDIT = "web-audit.jsonl"


class AuditLog:
    def __init__(self, run_dir: Path, name: str = SSH_AUDIT) -> None:
        self.path = run_dir / name
        run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    def record(self, event: str, peer: str, **fields: object) -> None:
        """`event`: listening, connect, disconnect, refused (with `reason`), resize, ..."""
        entry = {"time": round(time.time(), 3), "event": event, "peer": peer, **fields}
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as file:
                file.write(json.dumps(entry) + "\n")
        except OSError as exc:
            log.warning("audit log %s: %s", self.path, exc)
