"""The journal: reliable messages in SQLite (WAL), so nothing acknowledged is lost.

One row per (mailbox, message) still owed to a receiver. A reliable message is inserted
before its sender is acknowledged; a receiver's ack deletes the row; a dead letter keeps its
row with `dead` set until it is replayed. Writes are grouped: the server calls `commit()`
once per batch of frames it read, before it sends any reply, so one transaction covers many
messages and no reply ever promises an uncommitted write.

`PRAGMA synchronous=NORMAL` with WAL, chosen on purpose: every commit reaches the OS before
the sender is acknowledged, which survives the engine being killed (kill -9, OOM, crash) —
the failure this journal is for — without an fsync per batch. An OS crash or power loss may
lose the last commits; pass `synchronous="FULL"` to fsync every commit when that matters
more than throughput (see docs/performance.md for the cost).
"""

from __future__ import annotations

import contextlib
import sqlite3
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY,
    mailbox TEXT NOT NULL,
    id TEXT NOT NULL,
    body BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    dead TEXT,
    UNIQUE (mailbox, id)
);
CREATE TABLE IF NOT EXISTS declarations (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    config TEXT NOT NULL,
    PRIMARY KEY (kind, name)
);
"""


_ADD = "INSERT OR IGNORE INTO deliveries (mailbox, id, body) VALUES (?, ?, ?)"
_REMOVE = "DELETE FROM deliveries WHERE mailbox = ? AND id = ?"
_ATTEMPTED = "UPDATE deliveries SET attempts = ? WHERE mailbox = ? AND id = ?"
_KILL = "UPDATE deliveries SET dead = ?, attempts = ? WHERE mailbox = ? AND id = ?"
_REVIVE = "UPDATE deliveries SET dead = NULL, attempts = 0, body = ? WHERE mailbox = ? AND id = ?"
_DECLARE = "INSERT OR REPLACE INTO declarations (kind, name, config) VALUES (?, ?, ?)"


class Journal:
    """Writes are buffered in order and run at `commit()`: each run of one statement as one
    `executemany` inside one transaction (~3× fewer Python→SQLite round trips than a
    statement per write, measured in docs/performance.md)."""

    def __init__(self, path: Path, synchronous: str = "NORMAL") -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, got {synchronous!r}")
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.executescript(_SCHEMA)
        self._pending: list[tuple[str, list[tuple[object, ...]]]] = []
        self.writes = 0
        """Writes buffered so far, ever: a caller compares it to learn whether a command
        wrote (and so must not be acknowledged unless `commit()` succeeds)."""

    def _write(self, sql: str, args: tuple[object, ...]) -> None:
        self.writes += 1
        pending = self._pending
        if pending and pending[-1][0] is sql:
            pending[-1][1].append(args)
        else:
            pending.append((sql, [args]))

    def add(self, mailbox: str, msg_id: str, body: bytes) -> None:
        self._write(_ADD, (mailbox, msg_id, body))

    def remove(self, mailbox: str, msg_id: str) -> None:
        self._write(_REMOVE, (mailbox, msg_id))

    def attempted(self, mailbox: str, msg_id: str, attempts: int) -> None:
        self._write(_ATTEMPTED, (attempts, mailbox, msg_id))

    def kill(self, mailbox: str, msg_id: str, reason: str, attempts: int) -> None:
        """Mark a dead letter; it stays journalled until replayed."""
        self._write(_KILL, (reason, attempts, mailbox, msg_id))

    def revive(self, mailbox: str, msg_id: str, body: bytes) -> None:
        self._write(_REVIVE, (body, mailbox, msg_id))

    def declare(self, kind: str, name: str, config: str) -> None:
        self._write(_DECLARE, (kind, name, config))

    def commit(self) -> None:
        """Make every write so far durable (per `synchronous`); a no-op when none.

        On failure (sqlite3.Error: a full disk, a read-only file) the whole batch is rolled
        back and forgotten, and the error raised: the caller acknowledges none of it."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        db = self._db
        try:
            db.execute("BEGIN")
            for sql, rows in pending:
                db.executemany(sql, rows)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            raise

    def rows(self) -> Iterator[tuple[str, bytes, int, str | None]]:
        """Every journalled delivery, oldest first: (mailbox, body, attempts, dead)."""
        yield from self._db.execute(
            "SELECT mailbox, body, attempts, dead FROM deliveries ORDER BY seq"
        )

    def declarations(self) -> list[tuple[str, str, str]]:
        return list(self._db.execute("SELECT kind, name, config FROM declarations"))

    def close(self) -> None:
        try:
            self.commit()
        finally:
            self._db.close()
