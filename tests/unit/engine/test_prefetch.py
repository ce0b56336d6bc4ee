"""Parts downloaded ahead in parallel (engine/prefetch.py, through PartsReader): order, checks, failures, memory."""

from __future__ import annotations

import hashlib
import io
import os
import threading

import pytest

from ncbackup.engine import prefetch
from ncbackup.engine.prefetch import PartPrefetcher
from ncbackup.engine.restore import PartSource, PartsReader
from ncbackup.errors import IntegrityError, StorageError


class CountingStore:
    """Parts held in memory; counts the bytes handed out and how many parts are open at once."""

    def __init__(self, parts: list[bytes], *, broken_open: int | None = None, broken_read: int | None = None,
                 waits_for_company: bool = False) -> None:
        self.parts = parts
        # A part's first read waits (up to 0.5 s) until another part is open too: fetched one by one, none ever is.
        self.waits_for_company = waits_for_company
        self.company = threading.Condition()
        self.broken_open = broken_open
        self.broken_read = broken_read
        self.bytes_handed_out = 0
        self.open_now = 0
        self.most_open = 0
        self._lock = threading.Lock()

    def opener(self, index: int):
        def open_part():
            if index == self.broken_open:
                raise StorageError(f"object {index} is missing")
            with self._lock:
                self.open_now += 1
                self.most_open = max(self.most_open, self.open_now)
            with self.company:
                self.company.notify_all()
            return _CountingStream(self, index)

        return open_part

    def sources(self, *, sha256s: list[str] | None = None) -> list[PartSource]:
        hashes = sha256s or [hashlib.sha256(data).hexdigest() for data in self.parts]
        return [
            PartSource(label=f"part p.{index:03} of set S on test", open=self.opener(index),
                       size_bytes=len(data), sha256=hashes[index])
            for index, data in enumerate(self.parts)
        ]


class _CountingStream(io.RawIOBase):
    def __init__(self, store: CountingStore, index: int) -> None:
        super().__init__()
        self._store = store
        self._index = index
        self._data = io.BytesIO(store.parts[index])

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._index == self._store.broken_read and self._data.tell() > 0:
            raise StorageError("connection reset by peer")
        if self._store.waits_for_company and self._data.tell() == 0:
            with self._store.company:
                self._store.company.wait_for(lambda: self._store.open_now > 1, timeout=0.5)
        chunk = self._data.read(size)
        with self._store._lock:
            self._store.bytes_handed_out += len(chunk)
        return chunk

    def readinto(self, buffer) -> int:
        chunk = self.read(len(buffer))
        memoryview(buffer)[: len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        if not self.closed:
            with self._store._lock:
                self._store.open_now -= 1
        super().close()


def _parts(count: int, size_bytes: int) -> list[bytes]:
    return [os.urandom(size_bytes) for _ in range(count)]


def _read_all(reader: PartsReader, chunk_bytes: int = 1 << 20) -> bytes:
    pieces = []
    while piece := reader.read(chunk_bytes):
        pieces.append(piece)
    return b"".join(pieces)


def test_parallel_fetch_keeps_the_parts_in_order_and_fetches_several_at_once():
    store = CountingStore(_parts(12, 300_000), waits_for_company=True)
    reader = PartsReader(store.sources(), parallel_parts=4)
    try:
        assert _read_all(reader, 100_000) == b"".join(store.parts)
    finally:
        reader.close()
    assert reader.parts_checked == 12
    assert 1 < store.most_open <= 4
    assert store.open_now == 0  # every part closed


def test_parallel_fetch_detects_a_corrupted_part_by_its_sha256():
    store = CountingStore(_parts(6, 200_000))
    damaged = bytearray(store.parts[3])
    hashes = [hashlib.sha256(data).hexdigest() for data in store.parts]
    damaged[1234] ^= 1
    store.parts[3] = bytes(damaged)  # the manifest still holds the hash of the good part
    reader = PartsReader(store.sources(sha256s=hashes), parallel_parts=4)
    try:
        with pytest.raises(IntegrityError, match=r"part p\.003 of set S on test does not match its SHA-256"):
            _read_all(reader)
    finally:
        reader.close()
    assert store.open_now == 0


def test_a_part_that_cannot_be_fetched_fails_the_read_with_one_sentence():
    store = CountingStore(_parts(6, 200_000), broken_open=4)
    reader = PartsReader(store.sources(), parallel_parts=3)
    try:
        with pytest.raises(IntegrityError) as caught:
            _read_all(reader)
    finally:
        reader.close()
    message = str(caught.value)
    assert message.startswith("part p.004 of set S on test is missing or unreadable (object 4 is missing)")
    assert "\n" not in message
    assert reader.bytes_read == 4 * 200_000  # everything before it came out, in order


def test_a_download_that_breaks_half_way_fails_the_read_naming_the_part():
    store = CountingStore(_parts(5, 3 << 20), broken_read=2)
    reader = PartsReader(store.sources(), parallel_parts=4)
    try:
        with pytest.raises(IntegrityError, match=r"^part p\.002 of set S on test could not be read to the end "
                                                 r"\(connection reset by peer\); retry"):
            _read_all(reader)
    finally:
        reader.close()
    assert store.open_now == 0


def test_bytes_fetched_ahead_stay_within_the_budget(monkeypatch):
    budget_bytes, chunk_bytes, workers = 2 << 20, 256 << 10, 4
    monkeypatch.setattr(prefetch, "HEAD_RESERVE_BYTES", 512 << 10)
    store = CountingStore(_parts(10, 3 << 20))
    fetcher = PartPrefetcher([store.opener(i) for i in range(10)], workers=workers, budget_bytes=budget_bytes,
                             chunk_bytes=chunk_bytes)
    consumed = 0
    most_in_flight = 0
    try:
        for index, data in enumerate(store.parts):
            part = fetcher.open(index)
            received = bytearray()
            while piece := part.read(100_000):
                received += piece
                consumed += len(piece)
                # Handed out by the storage and not yet read by us: queued in the prefetcher, or in a worker's hand.
                most_in_flight = max(most_in_flight, store.bytes_handed_out - consumed)
            part.close()
            assert bytes(received) == data
    finally:
        fetcher.close()
    # The budget, plus the head part's reserve, plus one chunk per worker read before it waits for room.
    assert most_in_flight <= budget_bytes + (512 << 10) + workers * chunk_bytes
    assert most_in_flight > chunk_bytes  # it did read ahead
    assert store.open_now == 0


def test_closing_half_way_stops_the_fetching_threads():
    store = CountingStore(_parts(8, 4 << 20))
    reader = PartsReader(store.sources(), parallel_parts=4)
    assert reader.read(1000)
    reader.close()
    assert store.open_now == 0
    assert not [t for t in threading.enumerate() if t.name.startswith("restore-fetch-")]


def test_remote_backends_say_how_many_parts_to_fetch_at_once_and_retries_keep_it(tmp_path):
    from ncbackup.storage.base import parallel_part_reads
    from ncbackup.storage.local import LocalStorage
    from ncbackup.storage.rclone import RcloneStorage
    from ncbackup.storage.retry import with_retries
    from ncbackup.storage.s3 import S3Storage

    class Remote:
        name = "remote"

        def parallel_part_reads(self) -> int:
            return 4

    assert parallel_part_reads(with_retries(Remote(), attempts=2)) == 4  # type: ignore[arg-type]
    assert parallel_part_reads(with_retries(LocalStorage(tmp_path), attempts=2)) == 1   # the disk reads ahead itself
    assert S3Storage.parallel_part_reads is not None and RcloneStorage.parallel_part_reads is not None
