"""Counts in messages: "1 session", "2 sessions" (never "1 sessions")."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`count` and `noun`, plural unless the count is one (`plural` for irregular nouns)."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def agreeing(count: int, one: str, many: str) -> str:
    """The verb form for `count` subjects: agreeing(1, "keeps", "keep") is "keeps"."""
    return one if count == 1 else many
