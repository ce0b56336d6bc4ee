"""Parts of a stream downloaded ahead, several at once, in a bounded amount of memory, handed out in order.

A restore from a remote storage would otherwise wait for each part's request and download in turn, at one
connection's speed. Here up to ``workers`` parts (the one being read and those after it) are fetched by their
own threads; what they fetched waits in memory until the reader reaches it. The chunks held, over all parts,
stay under ``budget_bytes``, except that the part being read may always hold ``HEAD_RESERVE_BYTES`` (so it can
never wait for the later parts to be read: they cannot be). Memory, not a spool on disk: a restore host may be
short of disk (it is often why one restores), and nothing of the set should be left on disk after a crash.

Parts come out unchanged: the caller (engine.restore.PartsReader) still checks each one's size and SHA-256.
An error opening or reading a part is raised, as the same exception, by the reader of that part.
"""

from __future__ import annotations

import collections
import io
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO

from ncbackup.storage.base import as_binary

log = logging.getLogger(__name__)

FETCH_CHUNK_BYTES = 1 << 20
# Bytes fetched ahead of the reader, over all parts: a few 100 MB parts would not fit in a 300 MiB process.
PREFETCH_BUDGET_BYTES = 64 << 20
HEAD_RESERVE_BYTES = 4 << 20


class _Part:
    """What one part's fetching thread has produced so far."""

    __slots__ = ("buffered_bytes", "chunks", "error", "is_done", "is_opened")

    def __init__(self) -> None:
        self.chunks: collections.deque[tuple[bytearray, int]] = collections.deque()   # (buffer, bytes used)
        self.buffered_bytes = 0
        self.is_opened = False
        self.is_done = False
        self.error: BaseException | None = None


class PartPrefetcher:
    """Fetches the parts whose openers it is given, at most workers at a time and never more than workers ahead of
    the part being read; ``open(index)`` returns part index's reader (parts are to be read in order)."""

    def __init__(
        self,
        openers: Sequence[Callable[[], BinaryIO]],
        *,
        workers: int,
        budget_bytes: int = PREFETCH_BUDGET_BYTES,
        chunk_bytes: int = FETCH_CHUNK_BYTES,
    ) -> None:
        self._openers = list(openers)
        self._workers = max(1, workers)
        self._budget_bytes = budget_bytes
        self._chunk_bytes = chunk_bytes
        self._parts = [_Part() for _ in self._openers]
        self._condition = threading.Condition()
        self._head = 0                 # the part being read
        self._next_to_fetch = 0
        self._buffered_bytes = 0       # over all parts
        self._is_stopping = False
        # Buffers are reused, never freed: 1 MiB allocations made in one thread and freed in another would
        # scatter over glibc's per-thread malloc arenas (measured: 250-290 MiB peak RSS instead of 170).
        self._spare_buffers: list[bytearray] = []
        self._threads = [
            threading.Thread(target=self._work, name=f"restore-fetch-{number}", daemon=True)
            for number in range(min(self._workers, len(self._openers)))
        ]
        for thread in self._threads:
            thread.start()

    @property
    def buffered_bytes(self) -> int:
        return self._buffered_bytes

    def _work(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._is_stopping or self._next_to_fetch >= len(self._parts)
                                         or self._next_to_fetch < self._head + self._workers)
                if self._is_stopping or self._next_to_fetch >= len(self._parts):
                    return
                index = self._next_to_fetch
                self._next_to_fetch += 1
            self._fetch(index)

    def _may_add(self, index: int, size: int) -> bool:
        part = self._parts[index]
        if index == self._head and part.buffered_bytes < HEAD_RESERVE_BYTES:
            return True
        return self._buffered_bytes + size <= self._budget_bytes

    def _fetch(self, index: int) -> None:
        part = self._parts[index]
        try:
            stream = self._openers[index]()
        except BaseException as error:  # noqa: BLE001 - raised by the reader of this part
            with self._condition:
                part.error = error
                self._condition.notify_all()
            return
        try:
            with self._condition:
                part.is_opened = True
                self._condition.notify_all()
            while True:
                with self._condition:
                    buffer = self._spare_buffers.pop() if self._spare_buffers else bytearray(self._chunk_bytes)
                size = _read_into(stream, buffer)
                with self._condition:
                    if not size:
                        self._spare_buffers.append(buffer)
                        part.is_done = True
                        self._condition.notify_all()
                        return
                    self._condition.wait_for(lambda: self._is_stopping or self._may_add(index, size))  # noqa: B023 - waited for here
                    if self._is_stopping:
                        return
                    part.chunks.append((buffer, size))
                    part.buffered_bytes += size
                    self._buffered_bytes += size
                    self._condition.notify_all()
        except BaseException as error:  # noqa: BLE001 - raised by the reader of this part
            with self._condition:
                part.error = error
                self._condition.notify_all()
        finally:
            try:
                stream.close()
            except Exception as error:  # noqa: BLE001 - every byte is checked by its hash; a close failing loses none
                log.debug("closing a fetched part failed: %s", error)

    def open(self, index: int) -> BinaryIO:
        """Part index's reader, once its fetch has opened it; raises what opening it raised."""
        part = self._parts[index]
        with self._condition:
            self._head = index
            self._condition.notify_all()
            self._condition.wait_for(lambda: part.is_opened or part.error is not None or self._is_stopping)
            if part.error is not None and not part.is_opened:
                raise part.error
        return as_binary(_PartReader(self, index))

    def _take(self, index: int) -> bytes:
        """The next chunk of part index (b"" at its end); raises what reading it raised."""
        part = self._parts[index]
        with self._condition:
            self._condition.wait_for(lambda: bool(part.chunks) or part.is_done or part.error is not None
                                     or self._is_stopping)
            if part.chunks:
                buffer, size = part.chunks.popleft()
                # A copy: the buffer goes back to the fetching threads, the bytes live on downstream.
                chunk = bytes(memoryview(buffer)[:size])
                self._spare_buffers.append(buffer)
                part.buffered_bytes -= size
                self._buffered_bytes -= size
                self._condition.notify_all()
                return chunk
            if part.error is not None:
                raise part.error
            if self._is_stopping:
                raise ValueError("read from a closed PartPrefetcher")
            return b""

    def _drop(self, index: int) -> None:
        """Forget what was fetched of part index (its reader is closed)."""
        part = self._parts[index]
        with self._condition:
            self._buffered_bytes -= part.buffered_bytes
            part.buffered_bytes = 0
            self._spare_buffers.extend(buffer for buffer, _ in part.chunks)
            part.chunks.clear()
            self._condition.notify_all()

    def close(self) -> None:
        """Stop the fetching threads and wait for them (each closes the part it had open)."""
        with self._condition:
            self._is_stopping = True
            self._condition.notify_all()
        for thread in self._threads:
            thread.join()
        self._buffered_bytes = 0
        for part in self._parts:
            part.chunks.clear()
        self._spare_buffers.clear()


def _read_into(stream: BinaryIO, buffer: bytearray) -> int:
    """Fill buffer from stream as far as one read goes; the number of bytes (0 at the end)."""
    if isinstance(stream, (io.RawIOBase, io.BufferedIOBase)):   # every storage's stream: no copy
        return stream.readinto(buffer) or 0
    data = stream.read(len(buffer))
    buffer[: len(data)] = data
    return len(data)


class _PartReader(io.RawIOBase):
    """One part's bytes as the prefetcher fetched them."""

    def __init__(self, prefetcher: PartPrefetcher, index: int) -> None:
        super().__init__()
        self._prefetcher = prefetcher
        self._index = index
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        if not self._pending:
            chunk = self._prefetcher._take(self._index)
            if size >= len(chunk):
                return chunk  # the whole chunk, no copy
            self._pending = memoryview(chunk)
        piece, self._pending = self._pending[:size], self._pending[size:]
        return bytes(piece)

    def readinto(self, buffer: Any) -> int:
        chunk = self.read(len(buffer))
        memoryview(buffer).cast("B")[: len(chunk)] = chunk
        return len(chunk)

    def readall(self) -> bytes:
        pieces: list[bytes] = []
        while True:
            piece = self.read(FETCH_CHUNK_BYTES)
            if not piece:
                return b"".join(pieces)
            pieces.append(piece)

    def close(self) -> None:
        if not self.closed:
            self._prefetcher._drop(self._index)
        super().close()
