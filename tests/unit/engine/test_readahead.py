"""ReadAhead: bytes come through unchanged, the source's errors reach the consumer, and no thread outlives close()."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time

import pytest

from ncbackup.engine.readahead import ReadAhead
from ncbackup.engine.restore import PartSource, PartsReader
from ncbackup.errors import IntegrityError


def _threads_named(prefix: str) -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith(prefix)]


class _Endless(io.RawIOBase):
    """A source that never ends: only close() can stop a thread reading it."""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return b"x" * (size if size and size > 0 else 1000)


@pytest.mark.parametrize("read_bytes", [1, 777, 65536, 1 << 20, 5 << 20])
def test_read_ahead_returns_the_source_bytes_unchanged(read_bytes):
    # Byte-by-byte reads over a smaller stream: still many chunk boundaries, not millions of calls.
    data = os.urandom(300_000 if read_bytes == 1 else 3 << 20) + b"tail"
    with ReadAhead(io.BytesIO(data), name="test-ra-copy", chunk_bytes=100_000, depth=2) as reader:
        pieces = []
        while piece := reader.read(read_bytes):
            assert isinstance(piece, bytes)
            assert len(piece) <= read_bytes
            pieces.append(piece)
    assert b"".join(pieces) == data


def test_read_ahead_readinto_and_readall():
    data = os.urandom(300_000)
    with ReadAhead(io.BytesIO(data), name="test-ra-into", chunk_bytes=70_000) as reader:
        buffer = bytearray(1000)
        assert reader.readinto(buffer) == 1000
        assert bytes(buffer) == data[:1000]
        assert reader.readall() == data[1000:]
        assert reader.read(10) == b""


def test_error_in_reader_thread_surfaces_in_consumer_naming_the_part(tmp_path):
    good, bad = tmp_path / "p0", tmp_path / "p1"
    good.write_bytes(os.urandom(200_000))
    bad.write_bytes(os.urandom(200_000))
    parts = [
        PartSource(label=f"part {path.name} of set S", open=lambda p=path: open(p, "rb"),  # noqa: SIM115 - the reader closes it
                   size_bytes=path.stat().st_size, sha256=hashlib.sha256(path.read_bytes()).hexdigest())
        for path in (good, bad)
    ]
    data = bytearray(bad.read_bytes())
    data[150_000] ^= 1
    bad.write_bytes(bytes(data))
    stored = PartsReader(parts)
    reader = ReadAhead(stored, name="test-ra-part", chunk_bytes=64 * 1024)
    with pytest.raises(IntegrityError, match="part p1 of set S does not match its SHA-256"):
        while reader.read(1 << 20):
            pass
    # The error stays raised for later reads too.
    with pytest.raises(IntegrityError):
        reader.read(10)
    reader.close()
    assert not _threads_named("test-ra-part")


def test_close_stops_a_thread_blocked_on_a_full_queue():
    reader = ReadAhead(_Endless(), name="test-ra-endless", chunk_bytes=4096, depth=2)
    assert reader.read(10) == b"x" * 10
    # Give the thread time to fill the queue and block on it.
    time.sleep(0.05)
    reader.close()
    assert not _threads_named("test-ra-endless")


def test_closing_the_upstream_stage_releases_a_downstream_thread_waiting_on_it():
    upstream_source = _Blocking()
    upstream = ReadAhead(upstream_source, name="test-ra-up", chunk_bytes=10)
    downstream = ReadAhead(upstream, name="test-ra-down", chunk_bytes=10)
    assert downstream.read(10) == b"0123456789"
    upstream_source.release.set()
    upstream.close()
    with pytest.raises(ValueError):
        while downstream.read(10):
            pass
    downstream.close()
    assert not _threads_named("test-ra-")


class _Blocking(io.RawIOBase):
    """Returns one chunk, then blocks until released, then never ends."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self._calls = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self._calls += 1
        if self._calls > 1:
            assert self.release.wait(5)
        return b"0123456789"[:size]


def test_consumer_failure_then_close_leaves_no_thread():
    with pytest.raises(RuntimeError, match="consumer gave up"):
        with ReadAhead(_Endless(), name="test-ra-consumer", chunk_bytes=1 << 16, depth=3) as reader:
            reader.read(100)
            raise RuntimeError("consumer gave up")
    assert not _threads_named("test-ra-consumer")
