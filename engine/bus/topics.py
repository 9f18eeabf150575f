"""Topic names and subscription patterns, NATS style.

A topic is dot-separated words (`build.linux.done`). A pattern may use `*` for exactly one
word (`build.*.done`) and end in `>` for one or more words (`build.>` matches `build.x`
and `build.x.y`, not `build`). `TopicIndex` answers "who listens to this topic"; the bus
caches its answers per topic (dropped whenever a subscription changes), so steady
publishing costs one dict lookup.
"""

from __future__ import annotations

import re
from functools import lru_cache

from engine.bus.bus_errors import BadFrameError

MAX_TOPIC = 255
_WORD = re.compile(r"[A-Za-z0-9_:@-]+")


@lru_cache(maxsize=4096)
def check_topic(topic: str) -> str:
    """A concrete topic: words only, no wildcards."""
    _check(topic, wildcards=False)
    return topic


@lru_cache(maxsize=1024)
def check_pattern(pattern: str) -> str:
    _check(pattern, wildcards=True)
    return pattern


def _check(text: str, *, wildcards: bool) -> None:
    what = "pattern" if wildcards else "topic"
    if not text or len(text) > MAX_TOPIC:
        raise BadFrameError(f"{what} must be 1 to {MAX_TOPIC} characters, got {text!r}")
    words = text.split(".")
    for i, word in enumerate(words):
        if wildcards and (word == "*" or (word == ">" and i == len(words) - 1)):
            continue
        if not _WORD.fullmatch(word):
            hint = " ('*' one word, '>' the rest)" if wildcards else " (no wildcards here)"
            raise BadFrameError(f"bad {what} {text!r}: word {word!r} is not allowed{hint}")


def matches(pattern: str, topic: str) -> bool:
    p_words = pattern.split(".")
    t_words = topic.split(".")
    for i, word in enumerate(p_words):
        if word == ">":
            return len(t_words) > i
        if i >= len(t_words) or (word != "*" and word != t_words[i]):
            return False
    return len(p_words) == len(t_words)


class TopicIndex:
    """Patterns to subscriber keys. Not cached here: `MessageBus` caches each topic's
    resolved mailboxes and drops that cache whenever a subscription changes."""

    def __init__(self) -> None:
        self._patterns: dict[str, set[str]] = {}

    def add(self, pattern: str, key: str) -> None:
        self._patterns.setdefault(pattern, set()).add(key)

    def remove(self, pattern: str, key: str) -> None:
        keys = self._patterns.get(pattern)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._patterns[pattern]

    def lookup(self, topic: str) -> tuple[str, ...]:
        keys: set[str] = set()
        for pattern, subs in self._patterns.items():
            if matches(pattern, topic):
                keys |= subs
        return tuple(sorted(keys))
