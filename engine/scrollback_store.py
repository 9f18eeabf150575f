"""A session's older history, kept compact: lines as pickled styled runs in zlib blocks.

Why: avt holds ~24 bytes a cell, so a coloured 5000x200 history costs ~24 MB a session; the
same lines as styled runs, BLOCK_LINES to a compressed block, take ~0.2-0.9 MB. Lines come
in as the emulator evicts them (oldest first, each exactly once) and leave oldest first.

They come in raw (avt's `Line`) and are converted when `compact` runs (the engine's frames,
a few rows at a time, or before a read): in a flood that replaces the whole history between
two compactions, lines drop out unconverted, so a flood pays nothing here. Reads decode only
the blocks they touch; a process-wide LRU keeps the last few decoded for a viewer paging.

Lines are also numbered absolutely: `first` is the number of lines dropped since the store
was made (so the oldest kept line's index), `end` the index the next line pushed gets. A
line's index never changes and neither does its content, which lets a remote client keep a
copy and ask only for lines from the index it lacks (`read`, engine/remote/handlers.py).
"""

from __future__ import annotations

import itertools
import pickle
import zlib
from collections import OrderedDict, deque
from functools import partial
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from engine.screen import Style, StyledLine

R = TypeVar("R")
BLOCK_LINES = 64
LEVEL = 6  # zlib's default: ~1.6x smaller blocks than level 1, packing is off the hot path
CACHED_BLOCKS = 32  # decoded blocks kept for the whole process, not per session
_stores = itertools.count()
_decoded: OrderedDict[tuple[int, int], list[StyledLine]] = OrderedDict()


class _OpenBlock:
    """The block being filled, already in its packed form: the styles, each line's texts,
    and each run's index among the styles. Tuples of str and int are no work for the
    cyclic GC, where (text, Style) runs would be (1,000 sessions' open lines are ~10^6
    runs); a style is unpickled once a block, not once a run (~1 µs each). Styles are
    told apart by identity (the screen shares one object per pen): an equal one twice
    costs a slot, not a wrong line."""

    def __init__(self) -> None:
        self._index: dict[int, int] = {}
        self._styles: list[Style] = []
        self._texts: list[tuple[str, ...]] = []
        self._runs: list[tuple[int, ...]] = []

    def __len__(self) -> int:
        return len(self._texts)

    def add(self, line: StyledLine) -> None:
        self._texts.append(tuple(text for text, _ in line))
        self._runs.append(tuple(self._number(style) for _, style in line))

    def drop(self, count: int) -> None:
        del self._texts[:count], self._runs[:count]

    def lines(self, start: int, end: int) -> list[StyledLine]:
        return _decode(self._styles, self._texts[start:end], self._runs[start:end])

    def piece(self, start: int, end: int) -> Callable[[], list[StyledLine]]:
        """Lines [start, end) as they are now, decoded later: the slices are copies, and
        styles are only ever appended, so the numbers in the runs keep meaning the same."""
        return partial(_decode, self._styles, self._texts[start:end], self._runs[start:end])

    def pack(self) -> bytes:
        data = (self._styles, self._texts, self._runs)
        return zlib.compress(pickle.dumps(data, pickle.HIGHEST_PROTOCOL), LEVEL)

    def _number(self, style: Style) -> int:
        found = self._index.get(id(style))  # the list keeps the object, so its id, alive
        if found is None:
            found = self._index[id(style)] = len(self._styles)
            self._styles.append(style)
        return found


def _decode(
    styles: list[Style], texts: Sequence[tuple[str, ...]], runs: Sequence[tuple[int, ...]]
) -> list[StyledLine]:
    style = styles.__getitem__
    return [
        tuple(zip(text, map(style, run), strict=True))
        for text, run in zip(texts, runs, strict=True)
    ]


def _unpack(payload: bytes) -> list[StyledLine]:
    # Our own bytes, made in this process from our own lines: never data from outside.
    return _decode(*pickle.loads(zlib.decompress(payload)))


def _decoded_block(key: tuple[int, int], payload: bytes) -> list[StyledLine]:
    """A packed block's lines, through the process-wide LRU of decoded blocks."""
    lines = _decoded.get(key)
    if lines is None:
        lines = _decoded[key] = _unpack(payload)
        if len(_decoded) > CACHED_BLOCKS:
            _decoded.popitem(last=False)
    else:
        _decoded.move_to_end(key)
    return lines


def _block_piece(key: tuple[int, int], payload: bytes, offset: int, take: int) -> list[StyledLine]:
    """Read once and sent away, so not cached: a client's copy never asks for a line twice,
    and caching would only evict a paging viewer's blocks (and keep ~12,000 objects alive
    for the cyclic GC)."""
    lines = _decoded.get(key)
    return (_unpack(payload) if lines is None else lines)[offset : offset + take]


def _raw_piece(convert: Callable[[R], StyledLine], lines: list[R]) -> list[StyledLine]:
    return list(map(convert, lines))


class ScrollbackStore(Generic[R]):
    """At most `capacity` history lines, oldest first: packed blocks, then the open block's
    lines, then raw lines not yet converted."""

    def __init__(self, capacity: int, convert: Callable[[R], StyledLine]) -> None:
        self.capacity = max(capacity, 0)
        self._convert = convert
        self._id = next(_stores)
        self._blocks: deque[bytes] = deque()
        self._first = 0  # sequence number of _blocks[0], the key of its decoded copy
        self._skip = 0  # lines of _blocks[0] already dropped
        self._open = _OpenBlock()
        self._raw: deque[R] = deque()
        self._lost_raw = False  # raw lines dropped unconverted since the last compaction
        self._gone = 0  # lines dropped since the start: the absolute index of the oldest kept

    def __len__(self) -> int:
        return len(self._blocks) * BLOCK_LINES - self._skip + len(self._open) + len(self._raw)

    @property
    def raw(self) -> int:
        """Lines not yet converted (what compaction has still to reach)."""
        return len(self._raw)

    @property
    def first(self) -> int:
        """The absolute index of the oldest line kept (lines dropped since the start)."""
        return self._gone

    @property
    def end(self) -> int:
        """The absolute index the next line pushed will get."""
        return self._gone + len(self)

    def push(self, lines: Sequence[R]) -> None:
        """Lines the emulator evicted, oldest first; the oldest kept go if over capacity."""
        if len(lines) >= self.capacity:
            self.clear()
            self._gone += len(lines) - self.capacity
            self._lost_raw = bool(lines)
            self._raw.extend(lines[len(lines) - self.capacity :] if self.capacity else ())
            return
        excess = len(self) + len(lines) - self.capacity
        if excess > 0:
            self._drop(excess)
        self._raw.extend(lines)

    def clear(self) -> None:
        self._gone += len(self)
        for key in [key for key in _decoded if key[0] == self._id]:
            del _decoded[key]
        self._blocks.clear()
        self._skip = 0
        self._open = _OpenBlock()
        self._raw.clear()

    def compact(self, limit: int | None = None, force: bool = False) -> int:
        """Convert up to `limit` raw lines, oldest first, packing full blocks; return how
        many were converted. Unless forced, a compaction right after a flood dropped raw
        lines does nothing: the flood is likely to replace these too, unconverted."""
        raw = self._raw
        if not raw:
            return 0
        if self._lost_raw and not force:
            self._lost_raw = False
            return 0
        take = len(raw) if limit is None else min(limit, len(raw))
        convert = self._convert
        for _ in range(take):
            self._open.add(convert(raw.popleft()))
            if len(self._open) == BLOCK_LINES:
                self._blocks.append(self._open.pack())
                self._open = _OpenBlock()
        return take

    def lines(self, start: int, count: int) -> list[StyledLine]:
        """Lines [start, start + count), oldest first; 0 is the oldest kept."""
        self.compact(force=True)
        start, end = max(start, 0), min(max(start, 0) + max(count, 0), len(self))
        out: list[StyledLine] = []
        packed = len(self._blocks) * BLOCK_LINES
        at = start + self._skip
        while at < end + self._skip:
            if at >= packed:
                out += self._open.lines(at - packed, end + self._skip - packed)
                break
            index, offset = divmod(at, BLOCK_LINES)
            take = min(end + self._skip - at, BLOCK_LINES - offset)
            out += self._block(index)[offset : offset + take]
            at += take
        return out

    def read(self, index: int, count: int) -> list[Callable[[], list[StyledLine]]]:
        """Lines [index, index + count) by absolute index, clipped to what is kept, as
        pieces of at most BLOCK_LINES lines, each decoded when called. Taking them decodes
        nothing and fixes their content now (packed blocks and raw lines never change; the
        open block's are copied), so a server can decode and send a big answer a piece at
        a time between other work, and decodes only the blocks the answer holds."""
        at = max(index - self._gone, 0) + self._skip
        stop = min(index - self._gone + max(count, 0), len(self)) + self._skip
        packed = len(self._blocks) * BLOCK_LINES
        opened = packed + len(self._open)
        pieces: list[Callable[[], list[StyledLine]]] = []
        while at < min(stop, opened):
            if at < packed:
                block, offset = divmod(at, BLOCK_LINES)
                take = min(stop - at, BLOCK_LINES - offset)
                key = (self._id, self._first + block)
                pieces.append(partial(_block_piece, key, self._blocks[block], offset, take))
            else:
                take = min(stop, opened) - at
                pieces.append(self._open.piece(at - packed, at - packed + take))
            at += take
        if at < stop:  # raw lines, converted (again, later, by compaction) only when sent
            raw = list(itertools.islice(self._raw, at - opened, stop - opened))
            for cut in range(0, len(raw), BLOCK_LINES):
                pieces.append(partial(_raw_piece, self._convert, raw[cut : cut + BLOCK_LINES]))
        return pieces

    def _block(self, index: int) -> list[StyledLine]:
        return _decoded_block((self._id, self._first + index), self._blocks[index])

    def _drop(self, count: int) -> None:
        """The oldest `count` lines go: whole blocks, then open lines, then raw ones."""
        self._gone += count
        while count and self._blocks:
            take = min(count, BLOCK_LINES - self._skip)
            count -= take
            self._skip += take
            if self._skip == BLOCK_LINES:
                self._blocks.popleft()
                _decoded.pop((self._id, self._first), None)
                self._first += 1
                self._skip = 0
        if count and len(self._open):
            take = min(count, len(self._open))
            self._open.drop(take)
            count -= take
        if count:
            self._lost_raw = True
            for _ in range(min(count, len(self._raw))):
                self._raw.popleft()
