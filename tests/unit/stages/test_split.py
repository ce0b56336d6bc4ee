"""The splitter: part sizes, hashes, edge cases, and that the parts concatenated give the stream back."""

from __future__ import annotations

import hashlib
import os

import pytest

from ncbackup.stages.split import Splitter


class RecordingSink:
    """A PartSink that keeps every part's bytes, so tests can compare them."""

    def __init__(self) -> None:
        self.parts: dict[int, bytearray] = {}
        self.ended: list[tuple[int, int, str]] = []
        self.aborted: list[int] = []
        self._current: int | None = None

    def begin(self, index: int) -> None:
        assert self._current is None, "a part began before the previous one ended"
        self._current = index
        self.parts[index] = bytearray()

    def chunk(self, data) -> None:
        assert self._current is not None
        self.parts[self._current] += data

    def end(self, index: int, size_bytes: int, sha256: str) -> None:
        assert index == self._current
        self.ended.append((index, size_bytes, sha256))
        self._current = None

    def abort(self, error: BaseException) -> None:
        self.aborted.append(self._current)
        self._current = None


def _split(data: bytes, part_size_bytes: int | None, write_size: int) -> tuple[Splitter, RecordingSink]:
    sink = RecordingSink()
    splitter = Splitter(sink, part_size_bytes=part_size_bytes)
    for start in range(0, len(data), write_size):
        splitter.write(data[start:start + write_size])
    splitter.close()
    return splitter, sink


@pytest.mark.parametrize(
    ("size", "part_size", "write_size", "expected_parts"),
    [
        (0, 10, 7, 1),              # empty stream: one empty part, so the stream exists
        (0, None, 7, 1),
        (30, 10, 7, 3),             # exact multiple: no trailing empty part
        (30, 10, 10, 3),
        (31, 10, 7, 4),
        (5, 1, 3, 5),               # 1-byte parts
        (1000, None, 64, 1),        # no split
        (100_000, 4096, 65_536, 25),
    ],
)
def test_parts_have_the_right_sizes_and_concatenate_to_the_stream(size, part_size, write_size, expected_parts) -> None:
    data = os.urandom(size)
    splitter, sink = _split(data, part_size, write_size)
    assert len(sink.ended) == expected_parts
    assert b"".join(bytes(sink.parts[i]) for i in sorted(sink.parts)) == data
    for index, size_bytes, sha256 in sink.ended:
        assert size_bytes == len(sink.parts[index])
        assert sha256 == hashlib.sha256(sink.parts[index]).hexdigest()
        if part_size is not None and index < expected_parts - 1:
            assert size_bytes == part_size
    assert [(p.index, p.size_bytes, p.sha256) for p in splitter.parts] == sink.ended


def test_memoryview_over_a_reused_buffer_is_copied() -> None:
    sink = RecordingSink()
    splitter = Splitter(sink, part_size_bytes=None)
    buffer = bytearray(b"first")
    splitter.write(memoryview(buffer))
    buffer[:] = b"XXXXX"
    splitter.close()
    assert bytes(sink.parts[0]) == b"first"


def test_abort_drops_the_part_in_progress_and_ignores_later_writes() -> None:
    sink = RecordingSink()
    splitter = Splitter(sink, part_size_bytes=10)
    splitter.write(b"x" * 15)
    splitter.abort(RuntimeError("source died"))
    splitter.write(b"trailer flushed by a stage being garbage collected")
    splitter.close()
    assert [index for index, _, _ in sink.ended] == [0]
    assert sink.aborted == [1]


def test_part_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Splitter(RecordingSink(), part_size_bytes=0)
