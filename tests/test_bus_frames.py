"""The frame parser never raises, whatever the bytes or however they are split."""

from __future__ import annotations

import itertools
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.bus.bus_errors import BadFrameError, BusError, FrameTooLargeError
from engine.bus.frames import FrameDecoder, encode
from engine.bus.topics import TopicIndex, check_pattern, matches

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


def feed_in_chunks(data: bytes, cuts: list[int], limit: int = 4096) -> list[object]:
    decoder = FrameDecoder(limit)
    out: list[object] = []
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    for start, end in itertools.pairwise(points):
        out += [item for item, _ in decoder.feed(data[start:end])]
    return out


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.lists(st.integers(0, 2000), max_size=8))
def test_arbitrary_bytes_never_raise_and_give_one_result_per_line(
    data: bytes, cuts: list[int]
) -> None:
    out = feed_in_chunks(data, cuts)
    assert len(out) <= data.count(b"\n")
    assert all(isinstance(item, dict | BusError) for item in out)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.dictionaries(st.text(max_size=10), json_values), max_size=6),
    st.lists(st.integers(0, 5000), max_size=8),
)
def test_frames_survive_any_chunking(frames: list[dict[str, object]], cuts: list[int]) -> None:
    data = b"".join(encode(f) for f in frames)
    assert feed_in_chunks(data, cuts, limit=1 << 20) == frames


def test_bad_lines_become_errors_and_the_stream_goes_on() -> None:
    decoder = FrameDecoder(limit=64)
    data = b'not json\n[1]\n{"op":"ping"}\n' + b"x" * 100 + b'\n{"op":"ok"}\n\xff\n' + b"[" * 50000
    out = [item for item, _ in decoder.feed(data + b"\n")]
    kinds = [type(i).__name__ if isinstance(i, BusError) else i["op"] for i in out]
    assert kinds == [
        "BadFrameError", "BadFrameError", "ping", "FrameTooLargeError", "ok", "BadFrameError",
        "FrameTooLargeError",
    ]  # fmt: skip


def test_an_unterminated_oversize_line_is_reported_once_then_skipped() -> None:
    decoder = FrameDecoder(limit=10)
    first = decoder.feed(b"y" * 11)
    assert isinstance(first[0][0], FrameTooLargeError)
    assert decoder.feed(b"y" * 50) == []
    assert [item for item, _ in decoder.feed(b'tail\n{"a":1}\n')] == [{"a": 1}]


def test_deep_nesting_is_a_bad_frame_not_a_crash() -> None:
    out = FrameDecoder(limit=1 << 20).feed(b"[" * 200000 + b"\n")
    assert isinstance(out[0][0], BadFrameError | FrameTooLargeError)


words = st.sampled_from(["a", "b", "build", "x"])


@given(st.lists(words, min_size=1, max_size=4), st.lists(words, min_size=1, max_size=4))
def test_wildcards_agree_with_their_definition(pattern: list[str], topic: list[str]) -> None:
    t = ".".join(topic)
    assert matches(".".join(pattern), t) == (pattern == topic)
    star = [*pattern[:-1], "*"]
    assert matches(".".join(star), t) == (len(topic) == len(star) and topic[:-1] == star[:-1])
    gt = [*pattern[:-1], ">"]
    assert matches(".".join(gt), t) == (len(topic) >= len(gt) and topic[: len(gt) - 1] == gt[:-1])


def test_topic_index_cache_follows_subscription_changes() -> None:
    index = TopicIndex()
    index.add(check_pattern("build.>"), "s1")
    assert index.lookup("build.a.b") == ("s1",)
    index.add("build.*.b", "s2")
    assert index.lookup("build.a.b") == ("s1", "s2")
    index.remove("build.>", "s1")
    assert index.lookup("build.a.b") == ("s2",)
    assert json.dumps(index.lookup("other")) == "[]"
